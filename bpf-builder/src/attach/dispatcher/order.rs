//! Where a new program goes in a dispatcher's run order, and the run
//! priorities that make libxdp (which sorts by priority) keep that order.

use crate::kernel_id::KernelProgId;

use super::config::DEFAULT_PRIORITY;

/// A program of the chain, as an anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The program with this kernel id.
    Id(KernelProgId),
    /// The one program of the chain with this name.
    Name(String),
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Anchor::Id(id) => write!(f, "program {id}"),
            Anchor::Name(n) => write!(f, "program `{n}`"),
        }
    }
}

/// Where a program joins the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// After every program there now.
    #[default]
    Last,
    /// Before every program there now.
    First,
    /// Right before the anchor.
    Before(Anchor),
    /// Right after the anchor.
    After(Anchor),
    /// By run priority, as libxdp places programs: after every program of
    /// a lower or equal priority. The program gets this priority unless a
    /// program before it has it already (then the next free one).
    Priority(u32),
}

/// One program of the chain, as the ordering sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// Kernel id (`None` for the program being placed).
    pub id: Option<KernelProgId>,
    /// Name.
    pub name: String,
    /// Run priority.
    pub priority: u32,
}

/// The index `placement` puts a new program at in `chain` (in run order).
pub fn index(chain: &[Ranked], placement: &Placement) -> Result<usize, String> {
    let find = |anchor: &Anchor| -> Result<usize, String> {
        let hits: Vec<usize> = (0..chain.len())
            .filter(|&i| match anchor {
                Anchor::Id(id) => chain[i].id == Some(*id),
                Anchor::Name(n) => chain[i].name == *n,
            })
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => Err(format!("{anchor} is not in the dispatcher")),
            _ => Err(format!(
                "{} programs are named `{}` in the dispatcher; name one by id",
                hits.len(),
                match anchor {
                    Anchor::Name(n) => n.as_str(),
                    Anchor::Id(_) => "",
                }
            )),
        }
    };
    Ok(match placement {
        Placement::Last => chain.len(),
        Placement::First => 0,
        Placement::Before(a) => find(a)?,
        Placement::After(a) => find(a)? + 1,
        Placement::Priority(p) => chain.iter().take_while(|r| r.priority <= *p).count(),
    })
}

/// Inserts `new` at `at` and gives it a priority between its neighbours'
/// (`wanted` when that fits), raising the priorities after it where needed
/// so that they strictly increase from the new program on: libxdp, which
/// sorts by priority, then keeps the order we chose.
pub fn insert(chain: &mut Vec<Ranked>, at: usize, mut new: Ranked, wanted: Option<u32>) {
    let below = at.checked_sub(1).map(|i| chain[i].priority);
    let above = chain.get(at).map(|r| r.priority);
    new.priority = match (wanted, below, above) {
        (Some(p), Some(b), _) => p.max(b.saturating_add(1)),
        (Some(p), None, _) => p,
        (None, None, None) => DEFAULT_PRIORITY,
        (None, Some(b), None) => b.saturating_add(1),
        (None, None, Some(a)) => a.saturating_sub(1),
        (None, Some(b), Some(a)) if a > b.saturating_add(1) => b + (a - b) / 2,
        (None, Some(b), Some(_)) => b.saturating_add(1),
    };
    chain.insert(at, new);
    for i in at + 1..chain.len() {
        let floor = chain[i - 1].priority.saturating_add(1);
        if chain[i].priority < floor {
            chain[i].priority = floor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(prios: &[(u32, &str, u32)]) -> Vec<Ranked> {
        prios
            .iter()
            .map(|&(id, name, priority)| Ranked {
                id: Some(KernelProgId::new(id)),
                name: name.into(),
                priority,
            })
            .collect()
    }

    fn new() -> Ranked {
        Ranked {
            id: None,
            name: "new".into(),
            priority: 0,
        }
    }

    fn placed(c: &[(u32, &str, u32)], p: Placement) -> Vec<(String, u32)> {
        let mut c = chain(c);
        let at = index(&c, &p).unwrap();
        let wanted = match p {
            Placement::Priority(v) => Some(v),
            _ => None,
        };
        insert(&mut c, at, new(), wanted);
        c.into_iter().map(|r| (r.name, r.priority)).collect()
    }

    fn names(v: &[(String, u32)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn an_empty_chain_takes_libxdps_default() {
        assert_eq!(placed(&[], Placement::Last), [("new".into(), 50)]);
        assert_eq!(placed(&[], Placement::First), [("new".into(), 50)]);
    }

    #[test]
    fn anchors_fall_between_neighbours() {
        let c = [(1, "a", 10), (2, "b", 20), (3, "c", 30)];
        let v = placed(&c, Placement::Before(Anchor::Name("b".into())));
        assert_eq!(names(&v), ["a", "new", "b", "c"]);
        assert_eq!(v[1].1, 15);
        let v = placed(&c, Placement::After(Anchor::Id(KernelProgId::new(3))));
        assert_eq!(v[3], ("new".into(), 31));
        let v = placed(&c, Placement::First);
        assert_eq!(v[0], ("new".into(), 9));
    }

    #[test]
    fn ties_are_broken_by_raising_what_follows() {
        // Two libxdp programs at the default priority: one between them
        // needs the second (and what follows it) raised.
        let c = [(1, "a", 50), (2, "b", 50), (3, "c", 51)];
        let v = placed(&c, Placement::After(Anchor::Name("a".into())));
        assert_eq!(
            v,
            [
                ("a".into(), 50),
                ("new".into(), 51),
                ("b".into(), 52),
                ("c".into(), 53)
            ]
        );
        let v = placed(&[(1, "a", 0)], Placement::First);
        assert_eq!(v, [("new".into(), 0), ("a".into(), 1)]);
    }

    #[test]
    fn priorities_place_as_libxdp_does() {
        let c = [(1, "a", 10), (2, "b", 20)];
        assert_eq!(
            names(&placed(&c, Placement::Priority(20))),
            ["a", "b", "new"]
        );
        assert_eq!(placed(&c, Placement::Priority(20))[2].1, 21);
        assert_eq!(placed(&c, Placement::Priority(15))[1], ("new".into(), 15));
        assert_eq!(placed(&c, Placement::Priority(5))[0], ("new".into(), 5));
    }

    #[test]
    fn anchors_must_name_one_program() {
        let c = chain(&[(1, "a", 10), (2, "a", 20)]);
        let e = index(&c, &Placement::Before(Anchor::Name("a".into()))).unwrap_err();
        assert!(e.contains("2 programs are named `a`"), "{e}");
        let e = index(&c, &Placement::After(Anchor::Name("z".into()))).unwrap_err();
        assert!(e.contains("`z` is not in the dispatcher"), "{e}");
    }
}
