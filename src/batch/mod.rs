//! Whole data sets: pairing the files of two folders, analysing every case (in parallel, with
//! failures isolated), keeping one complete record per case so that a run can be resumed or split
//! into shards and merged, and summarising the data set.

pub mod folders;
pub mod merge;
pub mod outputs;
pub mod pairing;
pub mod prepare;
pub mod run;
