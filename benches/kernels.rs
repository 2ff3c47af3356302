//! Kernel benchmarks (`cargo bench`): the reduction pass, the gradient/statistics pass (with its
//! histograms), the gradient through softmax, and for logits one activation pass beside all the
//! work after loading, on synthetic 64³ to 256³ volumes built in memory (no file I/O).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dicegrad::analysis::measure;
use dicegrad::analysis::precision::LossScale;
use dicegrad::case::Case;
use dicegrad::loss::sums::{activation_pass, probabilities};
use dicegrad::loss::{Activation, CaseSums, Evaluation, GradientKernel, LossConfig, LossSpec};
use dicegrad::parallel::plain_pass;
use dicegrad::synth::{generate, SynthOptions};

fn case(side: usize, classes: usize, logits: bool) -> Case<'static> {
    let s = generate(&SynthOptions { shape: [side; 3], classes, seed: 1, ..SynthOptions::default() });
    let data = if logits { s.logits } else { s.probs };
    Case::from_parts([side; 3], s.labels, s.channels, data)
}

fn config(act: Activation, channels: usize) -> LossConfig {
    LossConfig::new(LossSpec { activation: act, ..LossSpec::default() }, channels).unwrap()
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    g.sample_size(10);
    for side in [64, 128, 256] {
        let n = side * side * side;
        g.throughput(Throughput::Elements(n as u64));
        let binary = case(side, 2, false);
        let cfg = config(Activation::None, 1);
        g.bench_with_input(BenchmarkId::new("plain pass (memory floor)", side), &side, |b, _| {
            b.iter(|| plain_pass(&binary.prediction.values))
        });
        g.bench_with_input(BenchmarkId::new("reduction pass, probabilities", side), &side, |b, _| {
            b.iter(|| CaseSums::compute(&binary, &cfg))
        });
        let four = case(side, 4, false);
        let cfg4 = config(Activation::None, 4);
        g.bench_with_input(BenchmarkId::new("plain pass, 4 channels", side), &side, |b, _| {
            b.iter(|| plain_pass(&four.prediction.values))
        });
        g.bench_with_input(BenchmarkId::new("reduction pass, 4-channel probabilities", side), &side, |b, _| {
            b.iter(|| CaseSums::compute(&four, &cfg4))
        });
        let eval = Evaluation::compute(&binary, &cfg);
        g.bench_with_input(BenchmarkId::new("statistics + histograms, two-valued", side), &side, |b, _| {
            b.iter(|| measure(&GradientKernel::new(&binary, &eval), &eval, LossScale::default()))
        });
        let logits = case(side, 2, true);
        let cfg_s = config(Activation::Sigmoid, 1);
        let eval_s = Evaluation::compute(&logits, &cfg_s);
        g.bench_with_input(BenchmarkId::new("statistics + histograms, sigmoid logits", side), &side, |b, _| {
            b.iter(|| measure(&GradientKernel::new(&logits, &eval_s), &eval_s, LossScale::default()))
        });
        // Logits: one activation pass (the floor: three are needed) beside all the work after
        // loading (loss sums, statistics, histograms).
        if side >= 128 {
            let multi_logits = case(side, 4, true);
            let cases = [
                ("sigmoid logits", &logits, cfg_s.clone()),
                ("4-channel softmax logits", &multi_logits, config(Activation::Softmax, 4)),
            ];
            for (name, case, cfg) in cases {
                let act = cfg.spec.activation;
                g.bench_with_input(BenchmarkId::new(format!("activation pass, {name}"), side), &side, |b, _| {
                    b.iter(|| activation_pass(case, act))
                });
                g.bench_with_input(BenchmarkId::new(format!("all work after loading, {name}"), side), &side, |b, _| {
                    b.iter(|| {
                        let eval = Evaluation::compute(case, &cfg);
                        measure(&GradientKernel::new(case, &eval), &eval, LossScale::default())
                    })
                });
            }
        }
        if side <= 128 {
            let multi = case(side, 4, true);
            let cfg_m = config(Activation::Softmax, 4);
            let eval_m = Evaluation::compute(&multi, &cfg_m);
            let kernel = GradientKernel::new(&multi, &eval_m);
            g.bench_with_input(BenchmarkId::new("softmax chain rule, 4 channels", side), &side, |b, _| {
                b.iter(|| {
                    let mut s = vec![0.0; 4 * n];
                    let mut out = vec![0f32; 4 * n];
                    probabilities(&multi, Activation::Softmax, 0..n, &mut s);
                    kernel.gradient(0..n, &s, &mut out);
                    out
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
