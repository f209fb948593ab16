use super::*;

const MS: u64 = 1_000_000;

fn net(lat: Dist) -> (Network, HostId, HostId) {
    let mut n = Network::new(7, lat);
    let a = n.add_host();
    let b = n.add_host();
    (n, a, b)
}

/// Deliver everything on `p` by following the timers, like the binding does.
fn drain(n: &mut Network, p: PipeId, mut at: Option<u64>) -> (Vec<u8>, bool, bool, u64) {
    let mut data = Vec::new();
    let (mut fin, mut rst, mut last) = (false, false, 0);
    while let Some(t) = at {
        assert!(t >= last, "arrival times never go back");
        last = t;
        let got = n.take(p, t, 1000).unwrap();
        data.extend(got.data);
        fin |= got.fin;
        rst |= got.rst;
        at = got.next_at;
    }
    (data, fin, rst, last)
}

#[test]
fn stream_keeps_order_under_random_latency() {
    let (mut n, a, b) = net(Dist::Uniform { lo: 0, hi: 50 * MS });
    let (ab, _ba) = n.open_stream(a, b, 5 * MS).unwrap();
    let mut first = Some(5 * MS);
    let mut expect = Vec::new();
    for i in 0..500u32 {
        let chunk = i.to_le_bytes();
        expect.extend_from_slice(&chunk);
        if let Some(t) = n.send(ab, &chunk, 5 * MS + u64::from(i) * 100).unwrap() {
            first = first.or(Some(t));
        }
    }
    n.send_fin(ab, 10 * MS).unwrap();
    let mut got = n.take(ab, 5 * MS, 1000).unwrap();
    assert!(got.open);
    let (data, fin, rst, _) = drain(&mut n, ab, got.next_at.take());
    assert_eq!(data, expect);
    assert!(fin && !rst);
    assert_eq!(n.pending_bytes(ab), 0);
}

#[test]
fn one_timer_at_a_time_and_chunking() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, _) = n.open_stream(a, b, 0).unwrap();
    assert!(n.take(ab, 0, 10).unwrap().open);
    assert_eq!(n.send(ab, &[1; 25], 0).unwrap(), Some(MS));
    assert_eq!(n.send(ab, &[2; 5], 0).unwrap(), None, "already armed");
    assert_eq!(n.pending_bytes(ab), 30);
    let t = n.take(ab, MS, 10).unwrap();
    assert_eq!(t.data.len(), 10);
    assert_eq!(t.next_at, Some(MS));
    assert_eq!(n.pending_bytes(ab), 20);
    let (rest, ..) = drain(&mut n, ab, t.next_at);
    assert_eq!(rest.len(), 20);
    assert_eq!(&rest[15..], &[2; 5]);
}

#[test]
fn partition_holds_then_heal_delivers_in_order() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, _) = n.open_stream(a, b, 0).unwrap();
    n.take(ab, 0, 10).unwrap();
    let t1 = n.send(ab, b"one", 0).unwrap();
    assert_eq!(t1, Some(MS));
    n.block(a, b).unwrap();
    assert_eq!(n.send(ab, b"two", MS / 2).unwrap(), None, "held");
    // The in-flight segment reaches a cut path: it is held too.
    let got = n.take(ab, MS, 100).unwrap();
    assert!(got.data.is_empty() && got.next_at.is_none());
    assert_eq!(n.send(ab, b"three", 2 * MS).unwrap(), None);
    let wake = n.unblock(a, b, 10 * MS);
    assert_eq!(wake, vec![(ab, 11 * MS)]);
    let (data, ..) = drain(&mut n, ab, Some(11 * MS));
    assert_eq!(data, b"onetwothree");
}

#[test]
fn one_way_partition_only_cuts_one_direction() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, ba) = n.open_stream(a, b, 0).unwrap();
    n.take(ab, 0, 10).unwrap();
    n.block(a, b).unwrap();
    assert_eq!(n.send(ab, b"x", 0).unwrap(), None);
    assert_eq!(n.send(ba, b"y", 0).unwrap(), Some(MS));
    assert_eq!(n.take(ba, MS, 10).unwrap().data, b"y");
    assert!(n.is_blocked(a, b) && !n.is_blocked(b, a));
    assert_eq!(n.heal_all(5 * MS), vec![(ab, 6 * MS)]);
}

#[test]
fn reset_discards_undelivered_bytes() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, _) = n.open_stream(a, b, 0).unwrap();
    n.take(ab, 0, 10).unwrap();
    n.send(ab, b"lost", 0).unwrap();
    n.send_rst(ab, 0).unwrap();
    let got = n.take(ab, MS, 100).unwrap();
    assert!(got.rst && got.data.is_empty());
    assert_eq!(n.pending_bytes(ab), 0);
}

#[test]
fn crash_resets_peers_and_drops_inbound() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, ba) = n.open_stream(a, b, 0).unwrap();
    n.take(ab, 0, 10).unwrap();
    n.send(ab, b"to-b", 0).unwrap();
    let armed_at = n.send(ba, b"to-a", 0).unwrap();
    assert_eq!(armed_at, Some(MS));
    let wake = n.crash(b, 0).unwrap();
    assert!(wake.is_empty(), "the outstanding timer delivers the reset");
    let got = n.take(ba, MS, 100).unwrap();
    assert!(
        got.rst && got.data.is_empty(),
        "peer sees a reset, not b's bytes"
    );
    assert!(!n.host_up(b).unwrap());
    // A stream with nothing in flight gets a fresh timer for its reset.
    let (cd, dc) = n.open_stream(a, b, 0).unwrap();
    n.restart(b).unwrap();
    let wake = n.crash(b, 3 * MS).unwrap();
    assert_eq!(wake, vec![(dc, 4 * MS)]);
    let _ = cd;
    // Data still sent to the dead host goes nowhere.
    assert_eq!(n.send(ab, b"more", 2 * MS).unwrap(), None);
    n.restart(b).unwrap();
    assert!(n.host_up(b).unwrap());
    assert_eq!(n.incarnation(b).unwrap(), 2, "crashed twice");
}

#[test]
fn datagram_faults_are_seeded_and_counted() {
    let run = |seed| {
        let mut n = Network::new(seed, Dist::Uniform { lo: MS, hi: 3 * MS });
        let a = n.add_host();
        let b = n.add_host();
        n.set_link(
            a,
            b,
            LinkCfg {
                latency: Dist::Uniform { lo: MS, hi: 3 * MS },
                loss: 0.2,
                duplicate: 0.1,
                reorder: 0.1,
            },
        )
        .unwrap();
        let mut arrivals = Vec::new();
        for i in 0..1000u64 {
            for (id, at) in n.dgram_send(a, b, &i.to_le_bytes(), i * 10).unwrap() {
                arrivals.push((at, id, i));
            }
        }
        arrivals.sort();
        let order: Vec<u64> = arrivals.iter().map(|x| x.2).collect();
        (order, n.stats().clone())
    };
    let (o1, s1) = run(1);
    let (o2, s2) = run(1);
    assert_eq!(o1, o2);
    assert_eq!(s1, s2);
    assert!((150..250).contains(&s1.datagrams_lost), "{s1:?}");
    assert!((50..130).contains(&s1.datagrams_duplicated), "{s1:?}");
    assert!(s1.datagrams_reordered > 50, "{s1:?}");
    let inversions = o1.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(inversions > 0);
    let (o3, _) = run(2);
    assert_ne!(o1, o3, "the seed matters");
}

#[test]
fn datagrams_in_order_without_reorder_and_dropped_across_partition() {
    let (mut n, a, b) = net(Dist::Uniform { lo: 0, hi: 20 * MS });
    let mut last = 0;
    for i in 0..200 {
        let v = n.dgram_send(a, b, b"x", i).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].1 >= last);
        last = v[0].1;
    }
    n.block(a, b).unwrap();
    assert!(n.dgram_send(a, b, b"x", 0).unwrap().is_empty());
    // One in flight when the receiver crashes is lost.
    n.unblock(a, b, 0);
    let v = n.dgram_send(a, b, b"y", 0).unwrap();
    n.crash(b, 0).unwrap();
    n.restart(b).unwrap();
    assert_eq!(n.dgram_take(v[0].0, a), None);
}

#[test]
fn latency_draws_do_not_depend_on_other_streams() {
    let mut n1 = Network::new(
        5,
        Dist::Uniform {
            lo: 0,
            hi: 100 * MS,
        },
    );
    let mut n2 = Network::new(
        5,
        Dist::Uniform {
            lo: 0,
            hi: 100 * MS,
        },
    );
    let a1 = n1.add_host();
    let a2 = n2.add_host();
    let b1 = n1.add_host();
    let b2 = n2.add_host();
    let x: Vec<u64> = (0..10).map(|_| n1.draw_latency(a1, b1)).collect();
    let y: Vec<u64> = (0..10).map(|_| n2.draw_latency(a2, b2)).collect();
    assert_eq!(x, y);
    let mut sched = Rng::stream(5, "schedule");
    assert_ne!(sched.next_u64(), Rng::stream(5, "net").next_u64());
}

#[test]
fn finished_pipes_are_forgotten() {
    let (mut n, a, b) = net(Dist::Fixed(MS));
    let (ab, ba) = n.open_stream(a, b, 0).unwrap();
    n.take(ab, 0, 10).unwrap();
    n.send_fin(ab, 0).unwrap();
    assert!(n.take(ab, MS, 10).unwrap().fin);
    n.sender_closed(ab);
    n.discard(ba);
    n.sender_closed(ba);
    assert_eq!(n.live_pipes(), 0);
    assert!(n.take(ab, MS, 10).is_err());
}

#[test]
fn errors_not_panics() {
    let (mut n, a, _) = net(Dist::Fixed(MS));
    assert_eq!(n.send(99, b"x", 0), Err(NetError::UnknownPipe(99)));
    assert!(n.block(a, 42).is_err());
    assert!(n
        .set_link(
            a,
            a,
            LinkCfg {
                loss: 2.0,
                ..LinkCfg::with_latency(Dist::Fixed(0))
            }
        )
        .is_err());
}

/// Random sends, partitions, heals and chunk sizes: every stream delivers
/// exactly the bytes sent, in order, and arrival times never go back.
#[test]
fn property_streams_survive_random_partitions() {
    for seed in 0..200u64 {
        let mut r = Rng::new(seed);
        let mut n = Network::new(
            seed,
            Dist::Exponential {
                mean: 3 * MS,
                offset: 100_000,
            },
        );
        let a = n.add_host();
        let b = n.add_host();
        let (ab, ba) = n.open_stream(a, b, MS).unwrap();
        let mut timers: Vec<(u64, PipeId)> = vec![(MS, ab)];
        let (mut sent_ab, mut sent_ba) = (Vec::new(), Vec::new());
        let (mut got_ab, mut got_ba) = (Vec::new(), Vec::new());
        let mut now = MS;
        let mut last_seen = [0u64; 2];
        for step in 0..400u32 {
            now += r.below(2 * MS);
            match r.below(10) {
                0 => n.block(a, b).unwrap(),
                1 => n.block(b, a).unwrap(),
                2 => timers.extend(n.heal_all(now).into_iter().map(|(p, t)| (t, p))),
                3..=5 => {
                    let chunk: Vec<u8> = step.to_le_bytes().repeat(1 + r.below(20) as usize);
                    sent_ab.extend_from_slice(&chunk);
                    timers.extend(n.send(ab, &chunk, now).unwrap().map(|t| (t, ab)));
                }
                6..=7 => {
                    let chunk = (step as u8).to_le_bytes().repeat(1 + r.below(50) as usize);
                    sent_ba.extend_from_slice(&chunk);
                    timers.extend(n.send(ba, &chunk, now).unwrap().map(|t| (t, ba)));
                }
                _ => {}
            }
            // Fire every timer that is due, earliest first (as the loop does).
            timers.sort();
            while let Some(&(t, p)) = timers.first() {
                if t > now {
                    break;
                }
                timers.remove(0);
                let got = n.take(p, t, 1 + r.below(64) as usize).unwrap();
                let i = usize::from(p == ba);
                assert!(t >= last_seen[i], "seed {seed}: delivery went back in time");
                last_seen[i] = t;
                if p == ab {
                    got_ab.extend(got.data);
                } else {
                    got_ba.extend(got.data);
                }
                if let Some(next) = got.next_at {
                    timers.push((next, p));
                    timers.sort();
                }
            }
        }
        // Heal and drain everything.
        now += 10 * MS;
        timers.extend(n.heal_all(now).into_iter().map(|(p, t)| (t, p)));
        timers.sort();
        while !timers.is_empty() {
            let (t, p) = timers.remove(0);
            let got = n.take(p, t, usize::MAX).unwrap();
            if p == ab {
                got_ab.extend(got.data);
            } else {
                got_ba.extend(got.data);
            }
            if let Some(next) = got.next_at {
                timers.push((next, p));
                timers.sort();
            }
        }
        assert_eq!(got_ab, sent_ab, "seed {seed}: a->b bytes");
        assert_eq!(got_ba, sent_ba, "seed {seed}: b->a bytes");
        assert_eq!(n.pending_bytes(ab) + n.pending_bytes(ba), 0);
    }
}
