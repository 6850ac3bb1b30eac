//! `grace::wait_for_running_programs` returns only after a program that
//! was running has finished: a test run of a long program is caught
//! between its first and last store, and once the wait returns its last
//! store is there.

mod common;

use std::time::{Duration, Instant};

use bpf_builder::asm::Asm;
use bpf_builder::grace::wait_for_running_programs;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use bpf_builder::run::TestRun;
use common::require_bpf;

/// `marks[slot] = 1`.
fn mark(a: &mut Asm, marks: MapId, slot: i32) {
    let skip = a.new_label();
    a.st(Size::W, R10, -4, slot);
    a.ld_map_fd(R1, marks);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, skip);
    a.st(Size::DW, R0, 0, 1);
    a.bind(skip);
}

#[test]
fn the_wait_outlasts_a_running_program() {
    if !require_bpf() {
        return;
    }
    // marks[0]: started; marks[1]: finished (after 8M empty loop turns).
    let mut o = Object::new();
    let marks = o.add_map(MapSpec::array("marks", 8, 2)).unwrap();
    let mut cb = Asm::new();
    cb.mov64(R0, 0);
    cb.exit();
    let cb = o.add_function("turn", cb.finish().unwrap()).unwrap();
    let mut a = Asm::new();
    mark(&mut a, marks, 0);
    a.mov32(R1, 1 << 23);
    a.ld_func(R2, cb);
    a.mov64(R3, 0);
    a.mov64(R4, 0);
    a.call(Helper::Loop);
    mark(&mut a, marks, 1);
    a.mov64(R0, 2);
    a.exit();
    let prog = o
        .add_program("slow", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    let map = loaded.map(marks);
    let get = |slot: u32| map.lookup(&slot.to_ne_bytes()).unwrap().unwrap()[0];
    let packet = [0u8; 64];
    let mut caught = false;
    for _ in 0..5 {
        for slot in 0..2u32 {
            map.update(&slot.to_ne_bytes(), &[0; 8], Default::default())
                .unwrap();
        }
        std::thread::scope(|s| {
            let run = s.spawn(|| loaded.program(prog).test_run(&TestRun::new(&packet)));
            let deadline = Instant::now() + Duration::from_secs(10);
            while get(0) == 0 {
                assert!(Instant::now() < deadline, "the program never started");
            }
            // Still running when the wait starts (else try again).
            let running = get(1) == 0;
            wait_for_running_programs().unwrap();
            if running {
                caught = true;
                assert_eq!(get(1), 1, "the wait returned while the program ran");
            }
            run.join().unwrap().unwrap();
        });
        if caught {
            break;
        }
    }
    assert!(caught, "the program was never caught running");
}
