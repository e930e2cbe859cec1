//! `execution: yielding` against `execution: inline`, interleaved in one
//! process: one exchange through a chain of `hello` filters (as in
//! `filter_chain`), in rounds of [`EXCHANGES`] that alternate between the
//! two executions, so that a machine whose speed drifts (a shared VM) moves
//! both alike. Criterion runs one case after the other; on such a machine
//! two runs of the same case a few minutes apart differed by 45 %.
//!
//! Each round's time includes building the request and response heads
//! (about the same for both). Prints the median, min and max per exchange
//! over the rounds after the first (a warm-up), and inline / yielding.
//!
//! `cargo bench -p weir-tests --bench execution_ab`

mod exchange;
mod support;

use std::hint::black_box;
use std::time::Instant;

use exchange::{exchange, request_head, response_head};
use weir_proxy::wasm::FilterSet;

/// Exchanges per round.
const EXCHANGES: u32 = 20_000;
/// Rounds per execution; the first is a warm-up and not counted.
const ROUNDS: usize = 16;

/// Microseconds per exchange of one round.
fn round(tokio: &tokio::runtime::Runtime, filters: &FilterSet) -> f64 {
    let started = Instant::now();
    tokio.block_on(async {
        for _ in 0..EXCHANGES {
            black_box(exchange(filters, request_head(), response_head()).await);
        }
    });
    started.elapsed().as_secs_f64() * 1e6 / f64::from(EXCHANGES)
}

/// (median, min, max) of `times`.
fn spread(mut times: Vec<f64>) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn main() {
    let tokio = support::tokio_runtime();
    let wasm = support::wasm_runtime(None);
    for count in [1, 3] {
        let load = |execution| {
            tokio.block_on(support::load(
                &wasm,
                &support::hello_chain(count, "pooled", execution),
            ))
        };
        let (yielding, inline) = (load("yielding"), load("inline"));
        let (mut yielding_times, mut inline_times) = (Vec::new(), Vec::new());
        for index in 0..ROUNDS {
            let (y, i) = (round(&tokio, &yielding), round(&tokio, &inline));
            if index > 0 {
                yielding_times.push(y);
                inline_times.push(i);
            }
        }
        let (y, y_min, y_max) = spread(yielding_times);
        let (i, i_min, i_max) = spread(inline_times);
        println!(
            "execution_ab/{count}: yielding {y:.2} µs ({y_min:.2}–{y_max:.2}), \
             inline {i:.2} µs ({i_min:.2}–{i_max:.2}), inline / yielding {:.3}",
            i / y
        );
    }
}
