//! Times, in one process, the parts of `dicegrad analyze` against the memory-bandwidth floor:
//! loading both files, one plain pass over the decoded prediction (a sum of its values), and all
//! the work after loading (loss sums, gradient statistics, histograms) — on 1 thread and on all.
//!
//! cargo run --release --example passes -- LABELS PRED [none|sigmoid|softmax] [REPEATS]

use std::path::Path;
use std::time::Instant;

use dicegrad::analysis::analyze;
use dicegrad::loss::preset::{LossRequest, Overrides};
use dicegrad::loss::{Activation, Evaluation, GradientKernel};
use dicegrad::nifti_io::{LoadOptions, OpenCase};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: passes LABELS PRED [none|sigmoid|softmax] [REPEATS]");
        std::process::exit(2);
    }
    let activation = match args.get(3).map(String::as_str) {
        Some("sigmoid") => Activation::Sigmoid,
        Some("softmax") => Activation::Softmax,
        _ => Activation::None,
    };
    let repeats: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let t = Instant::now();
    let open =
        OpenCase::open(Path::new(&args[1]), Path::new(&args[2]), LoadOptions { max_values: u64::MAX, label: None })
            .unwrap_or_else(|e| panic!("{e}"));
    let request =
        LossRequest { preset: None, overrides: Overrides { activation: Some(activation), ..Overrides::default() } };
    let config = request.config(open.channels).unwrap_or_else(|e| panic!("{e}"));
    let case = open.read(activation == Activation::None).unwrap_or_else(|e| panic!("{e}"));
    let load = t.elapsed().as_secs_f64();
    let data = &case.prediction.data;
    let plain = median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                let s: f64 = data.iter().map(|&v| v as f64).sum();
                std::hint::black_box(s);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let work = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        median(
            (0..repeats)
                .map(|_| {
                    pool.install(|| {
                        let t = Instant::now();
                        let eval = Evaluation::compute(&case, &config);
                        let stats = analyze(&GradientKernel::new(&case, &eval), &eval);
                        std::hint::black_box(stats);
                        t.elapsed().as_secs_f64()
                    })
                })
                .collect(),
        )
    };
    let sums_only = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        median(
            (0..repeats)
                .map(|_| {
                    pool.install(|| {
                        let t = Instant::now();
                        std::hint::black_box(Evaluation::compute(&case, &config));
                        t.elapsed().as_secs_f64()
                    })
                })
                .collect(),
        )
    };
    eprintln!("sums only: 1 thread {:.4} s, all {:.4} s", sums_only(1), sums_only(rayon::current_num_threads()));
    let (one, all) = (work(1), work(rayon::current_num_threads()));
    println!(
        "voxels×channels {}  load {load:.3} s  plain pass {plain:.3} s  after-load work: 1 thread {one:.3} s, \
         {} threads {all:.3} s  ratio to plain pass {:.2}  speed-up {:.2}",
        data.len(),
        rayon::current_num_threads(),
        all / plain,
        one / all
    );
}
