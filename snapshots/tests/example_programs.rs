//! Pins the code of the example programs. A changed snapshot is reviewed
//! like code: the commit says why the new code is better.

#[test]
fn xdp_counter_listing() {
    let c = examples::xdp_counter::build().unwrap();
    insta::assert_snapshot!(c.object.listing(c.program).unwrap());
}

#[test]
fn loop_globals_listing() {
    let l = examples::loop_globals::build(10, 7).unwrap();
    insta::assert_snapshot!(l.object.listing(l.program).unwrap());
}
