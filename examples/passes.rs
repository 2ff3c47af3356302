//! Times, in one process, the parts of `dicegrad analyze` against the memory-bandwidth floor:
//! loading both files; one plain pass over the decoded prediction (its sum, on the same chunks
//! and threads as the real passes: the floor); the activation applied once to every value (the
//! least work an exact analysis of logits does: its floor); the reduction pass (the loss sums); the gradient
//! statistics and histograms; and all the work after loading on 1 thread and on all threads.
//! Each time is the median of REPEATS runs.
//!
//! cargo run --release --example passes -- LABELS PRED [none|sigmoid|softmax] [REPEATS]

use std::path::Path;
use std::time::Instant;

use dicegrad::analysis::measure;
use dicegrad::analysis::precision::LossScale;
use dicegrad::loss::sums::activation_pass;
use dicegrad::loss::{Activation, CaseSums, Evaluation, GradientKernel, LossPatch, LossRequest};
use dicegrad::parallel::plain_pass;
use dicegrad::pipeline::load::{LoadOptions, OpenCase};

fn median_time(repeats: usize, threads: usize, f: impl Fn() + Sync) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            pool.install(|| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
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
    let repeats: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let t = Instant::now();
    let options = LoadOptions { max_values: u64::MAX, ..LoadOptions::default() };
    let open =
        OpenCase::open(Path::new(&args[1]), Path::new(&args[2]), options, None).unwrap_or_else(|e| panic!("{e}"));
    let request =
        LossRequest { preset: None, overrides: LossPatch { activation: Some(activation), ..LossPatch::default() } };
    let config = request.configs(&[], open.channels()).unwrap_or_else(|e| panic!("{e}")).swap_remove(0);
    let case = open.read().unwrap_or_else(|e| panic!("{e}")).case;
    let load = t.elapsed().as_secs_f64();
    let all = rayon::current_num_threads();
    let data = &case.prediction.values;
    let plain = median_time(repeats, all, || {
        std::hint::black_box(plain_pass(data));
    });
    let sums = median_time(repeats, all, || {
        std::hint::black_box(CaseSums::compute(&case, &config));
    });
    let activated = median_time(repeats, all, || {
        std::hint::black_box(activation_pass(&case, activation));
    });
    let eval = Evaluation::compute(&case, &config);
    let stats = median_time(repeats, all, || {
        std::hint::black_box(measure(&GradientKernel::new(&case, &eval), &eval, LossScale::default()));
    });
    let work = |threads| {
        median_time(repeats, threads, || {
            let eval = Evaluation::compute(&case, &config);
            std::hint::black_box(measure(&GradientKernel::new(&case, &eval), &eval, LossScale::default()));
        })
    };
    let (one, many) = (work(1), work(all));
    println!(
        "values {}  activation {activation:?}  load {load:.3} s  plain pass {:.2} ms  activation pass {:.2} ms  \
         sums {:.2} ms  statistics {:.2} ms  after loading: 1 thread {:.2} ms, {all} threads {:.2} ms  \
         ratio to plain pass {:.2}  to activation pass {:.2}  speed-up {:.2}",
        data.len(),
        plain * 1e3,
        activated * 1e3,
        sums * 1e3,
        stats * 1e3,
        one * 1e3,
        many * 1e3,
        many / plain,
        many / activated,
        one / many
    );
}
