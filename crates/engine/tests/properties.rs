//! Property tests: random workloads against every strategy, checking the
//! scheduler's invariants. The workloads come from the engine's own PRNG, so
//! every failure is reproducible from the printed case number.

use seedloop_engine::rng::Rng;
use seedloop_engine::{Begin, Scheduler, StrategySpec};

#[derive(Clone, Copy, Debug)]
struct Job {
    id: u64,
    deadline: Option<u64>,
    cancelled: bool,
}

/// Drive a random workload; return (ran ids in order, tape, fingerprint).
fn workload(case: u64, spec: StrategySpec) -> (Vec<u64>, Vec<u32>, u64) {
    let mut gen = Rng::stream(case, "workload");
    let mut sched: Scheduler<Job> = Scheduler::new(case, spec);
    let mut next_id = 0u64;
    let mut budget = 300u32;
    let mut ran = Vec::new();
    let mut expected_live = std::collections::BTreeSet::new();
    let mut push = |sched: &mut Scheduler<Job>, gen: &mut Rng| {
        let id = next_id;
        next_id += 1;
        let owner = gen.below(6) as u32;
        let cancelled = gen.below(10) == 0;
        if gen.below(3) == 0 {
            let deadline = sched.now_ns() + gen.below(5) * 1_000;
            sched.push_timer(
                deadline,
                owner,
                Job {
                    id,
                    deadline: Some(deadline),
                    cancelled,
                },
            );
        } else {
            sched.push_ready(
                owner,
                Job {
                    id,
                    deadline: None,
                    cancelled,
                },
            );
        }
        (id, cancelled)
    };
    for _ in 0..5 {
        let (id, cancelled) = push(&mut sched, &mut gen);
        if !cancelled {
            expected_live.insert(id);
        }
    }
    let mut last_now = 0;
    loop {
        let n = match sched.begin_iteration(true, |j| !j.cancelled) {
            Begin::Ready(n) => n,
            Begin::Idle => break,
            Begin::Discarded => {
                // Cancelled timers came off the heap before the clock moved.
                let dropped = sched.take_discarded();
                assert!(
                    dropped.iter().all(|j| j.cancelled),
                    "a live timer was dropped"
                );
                continue;
            }
        };
        assert!(sched.now_ns() >= last_now, "clock went backwards");
        last_now = sched.now_ns();
        for _ in 0..n {
            let Some(entry) = sched.step() else { break };
            let job = entry.payload;
            if job.cancelled {
                continue;
            }
            if let Some(deadline) = job.deadline {
                assert!(sched.now_ns() >= deadline, "timer ran early");
            }
            ran.push(job.id);
            // Each job spawns 0-2 more while the budget lasts.
            for _ in 0..gen.below(3) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let (id, cancelled) = push(&mut sched, &mut gen);
                if !cancelled {
                    expected_live.insert(id);
                }
            }
        }
    }
    let mut sorted = ran.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ran.len(), "a job ran twice");
    let ran_set: std::collections::BTreeSet<u64> = ran.iter().copied().collect();
    assert_eq!(
        ran_set, expected_live,
        "a live job never ran, or a cancelled one did"
    );
    (ran, sched.trace().tape(), sched.trace().fingerprint())
}

fn specs() -> Vec<StrategySpec> {
    vec![
        StrategySpec::Fifo,
        StrategySpec::Shuffle,
        StrategySpec::Random,
        StrategySpec::Pct {
            depth: 3,
            steps: 200,
        },
        StrategySpec::Pos,
        StrategySpec::Strict,
    ]
}

#[test]
fn every_live_entry_runs_once_never_early_under_every_strategy() {
    for case in 0..200 {
        for spec in specs() {
            workload(case, spec);
        }
    }
}

#[test]
fn same_seed_same_run_and_tapes_replay_exactly() {
    for case in 0..100 {
        for spec in specs() {
            let (ran, tape, fp) = workload(case, spec.clone());
            let (ran2, _, fp2) = workload(case, spec.clone());
            assert_eq!((ran.clone(), fp), (ran2, fp2), "case {case} {spec:?}");
            let (replayed, replay_tape, _) =
                workload(case, StrategySpec::Replay { tape: tape.clone() });
            assert_eq!(replayed, ran, "replay diverged: case {case} {spec:?}");
            assert_eq!(replay_tape, tape);
        }
    }
}

#[test]
fn fifo_tape_is_all_zeros() {
    for case in 0..50 {
        let (_, tape, _) = workload(case, StrategySpec::Fifo);
        assert!(tape.iter().all(|&c| c == 0));
    }
}
