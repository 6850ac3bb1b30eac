//! The syntax tree of an nftables ruleset file, as written: nothing is
//! looked up or typed here ([`crate::check`] does that), and every node
//! carries the [`Span`] of its text.
//!
//! The tree keeps the file's order: commands, and inside blocks the items,
//! stay where they were written, because `define` and `flush ruleset`
//! mean something only at their place. `include` leaves no node: the
//! included file's items stand where the `include` was, their spans in the
//! included file.

pub use pktmatch::Span;

pub use crate::syntax::token::AddrLit;

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// A string as written (`"quoted"` or a bare word), with its span.
pub type Str = Ident;

/// A number with its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num {
    /// The value.
    pub value: u64,
    /// Where it is written.
    pub span: Span,
}

/// A whole file: its commands in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// The top-level commands.
    pub commands: Vec<Command>,
}

/// A top-level line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `flush ruleset`: everything before it is dropped.
    FlushRuleset(Span),
    /// `define`, `redefine` or `undefine`.
    Define(Define),
    /// `table FAMILY NAME { ... }` or `add table FAMILY NAME [{ ... }]`.
    Table(TableCmd),
    /// `add chain FAMILY TABLE NAME [{ ... }]`.
    Chain(InTable<ChainDecl>),
    /// `add rule FAMILY TABLE CHAIN RULE`.
    Rule(InTable<RuleCmd>),
    /// `add set|map FAMILY TABLE NAME { ... }`.
    Set(InTable<SetDecl>),
    /// `add element FAMILY TABLE SET { ... }`.
    Element(InTable<ElementCmd>),
}

/// A `define NAME = VALUE`, `redefine NAME = VALUE` or `undefine NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Define {
    /// Which of the three.
    pub kind: DefineKind,
    /// The variable.
    pub name: Ident,
    /// The value (`None` for `undefine`).
    pub value: Option<Expr>,
    /// The whole line.
    pub span: Span,
}

/// The three commands on variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefineKind {
    /// `define`: a new variable (an error if one of that name is visible).
    Define,
    /// `redefine`: a new value, defining it if needed.
    Redefine,
    /// `undefine`: forget the variable.
    Undefine,
}

/// A table as a command names it: `[FAMILY] NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The family (`netdev`, or another that the checks refuse); `None`
    /// when omitted, which nft reads as `ip`.
    pub family: Option<Ident>,
    /// The table's name.
    pub name: Ident,
}

impl TableRef {
    /// The family's name, nft's default (`ip`) when omitted.
    pub fn family_name(&self) -> &str {
        self.family.as_ref().map_or("ip", |f| f.name.as_str())
    }
}

/// A command that names its table: `add chain netdev t c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InTable<T> {
    /// The table.
    pub table: TableRef,
    /// What the command adds.
    pub item: T,
    /// The whole command.
    pub span: Span,
}

/// `table FAMILY NAME { ITEMS }`, or `add table FAMILY NAME` without or
/// with a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCmd {
    /// The table.
    pub table: TableRef,
    /// The body, in order (empty when there is none).
    pub items: Vec<TableItem>,
    /// The whole command.
    pub span: Span,
}

/// What a table block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableItem {
    /// A variable, visible in the rest of the block.
    Define(Define),
    /// `chain NAME { ... }`.
    Chain(ChainDecl),
    /// `set NAME { ... }` or `map NAME { ... }`.
    Set(SetDecl),
    /// `counter NAME [{ packets N bytes M }]`.
    Counter(CounterDecl),
    /// `quota NAME { [over|until] N UNIT [used N UNIT] }`.
    Quota(QuotaDecl),
    /// `flags NAME, ...` (`dormant`, `owner`, `persist`).
    Flags(Vec<Ident>),
    /// `comment "..."`.
    Comment(Str),
    /// A declaration nft knows that we do not compile (`flowtable`, `ct
    /// helper`, `limit NAME`, ...), skipped whole for the checks to
    /// refuse by name.
    Unsupported(Unsupported),
}

/// Something the parser read only far enough to skip it: the checks
/// refuse it, naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// What it is called in errors: `ct state`, `reject`, `flowtable`.
    pub what: String,
    /// The keyword(s) that name it.
    pub span: Span,
}

/// `chain NAME { ITEMS }` (or an `add chain` without a body: no items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDecl {
    /// The chain's name.
    pub name: Ident,
    /// The body, in order.
    pub items: Vec<ChainItem>,
    /// The whole declaration.
    pub span: Span,
}

/// What a chain block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainItem {
    /// A variable, visible in the rest of the block.
    Define(Define),
    /// `type filter hook ingress device "eth0" priority 0;`.
    Hook(HookSpec),
    /// `policy accept|drop;`: a word or a variable.
    Policy(Expr),
    /// `comment "..."`.
    Comment(Str),
    /// `flags offload` and the like: refused by the checks.
    Flags(Vec<Ident>),
    /// A rule.
    Rule(Rule),
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// `filter` (netdev also knows no other).
    pub chain_type: Ident,
    /// `ingress` or `egress`.
    pub hook: Ident,
    /// `device "IF"` (one) or `devices = { "A", B, $x }`: each a string,
    /// a word or a variable.
    pub devices: Vec<Expr>,
    /// `priority N`, `priority filter + 10`, `priority $p`.
    pub priority: Option<Priority>,
    /// From `type` to the end of the spec.
    pub span: Span,
}

/// A chain priority: a number, a name plus or minus a number, or a
/// variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    /// A name (`filter`) or a variable or number.
    pub base: Expr,
    /// `+ N` or `- N` after a name, as a signed offset.
    pub offset: Option<i64>,
    /// The whole priority.
    pub span: Span,
}

/// `add rule FAMILY TABLE CHAIN RULE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCmd {
    /// The chain.
    pub chain: Ident,
    /// The rule.
    pub rule: Rule,
}

/// `add element FAMILY TABLE SET { ELEMENTS }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementCmd {
    /// The set or map.
    pub set: Ident,
    /// The elements: an [`ExprKind::Set`] or a variable.
    pub elements: Expr,
}

/// A command on a set of a running ruleset, as nft's command line takes
/// it: `add|create|delete element [FAMILY] TABLE SET { ELEMENTS }`,
/// `flush|list set|map [FAMILY] TABLE SET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCommand {
    /// What to do.
    pub verb: SetVerb,
    /// The table.
    pub table: TableRef,
    /// The set or map.
    pub set: Ident,
    /// The elements (`add`, `create`, `delete`): an [`ExprKind::Set`].
    pub elements: Option<Expr>,
    /// The whole command.
    pub span: Span,
}

/// What a [`SetCommand`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetVerb {
    /// `add element`: elements already there are no error.
    Add,
    /// `create element`: an element already there is an error.
    Create,
    /// `delete element`: an element not there is an error.
    Delete,
    /// `flush set`: every element goes.
    Flush,
    /// `list set`: shows the elements.
    List,
}

/// A rule: statements in order, and an optional comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The statements.
    pub stmts: Vec<Stmt>,
    /// `comment "..."` at the end.
    pub comment: Option<Str>,
    /// The whole rule.
    pub span: Span,
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// A match: `tcp dport 22`, `ip saddr != @blocked`.
    Match(Relation),
    /// `accept`, `drop`, `continue`, `return`, `jump C`, `goto C`.
    Verdict(Verdict),
    /// `KEY vmap { K : VERDICT, ... }` or `KEY vmap @map`.
    VerdictMap(VerdictMap),
    /// `counter [packets N bytes M]` or `counter name NAME`.
    Counter(CounterStmt),
    /// `limit rate ...`.
    Limit(LimitStmt),
    /// `quota ...` or `quota name NAME`.
    Quota(QuotaStmt),
    /// `log [prefix "..."] [level L] ...`.
    Log(LogStmt),
    /// `fwd to DEVICE` (also `fwd ip|ip6 to ADDR device DEVICE`).
    Fwd(FwdStmt),
    /// `add @SET { KEY [timeout T] [limit ...] }` or `update @SET { ... }`:
    /// the packet's key added to (or refreshed in) a set.
    DynSet(DynSetStmt),
    /// `pcap "EXPR"`: nft2bpf's extension, which nft lacks: a tcpdump
    /// filter expression as a match.
    Pcap(Str),
    /// `EXPR set VALUE`: packet or metadata mangling (`meta mark set 1`,
    /// `ip ttl set 1`), refused by the checks.
    Mangle(Mangle),
    /// A statement nft knows that we do not compile (`reject`, `dnat`,
    /// `queue`, ...), or a statement that starts with an expression we do
    /// not compile (`ct state ...`): the rest of the rule is skipped.
    Unsupported(Unsupported),
}

impl Stmt {
    /// The statement's text.
    pub fn span(&self) -> Span {
        match self {
            Stmt::Match(r) => r.span,
            Stmt::Verdict(v) => v.span,
            Stmt::VerdictMap(v) => v.span,
            Stmt::Counter(c) => c.span,
            Stmt::Limit(l) => l.span,
            Stmt::Quota(q) => q.span,
            Stmt::Log(l) => l.span,
            Stmt::Fwd(f) => f.span,
            Stmt::Pcap(p) => p.span,
            Stmt::DynSet(d) => d.span,
            Stmt::Mangle(m) => m.span,
            Stmt::Unsupported(u) => u.span,
        }
    }
}

/// `add @SET { KEY [timeout T] [STATEMENT ...] }` or `update @SET { ...
/// }`: nft's set statement (its `dynset` expression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynSetStmt {
    /// `update` (refreshes an element's timeout) rather than `add`.
    pub update: bool,
    /// The set: `@NAME`.
    pub set: Expr,
    /// The key: a selector or a concatenation of them.
    pub key: Expr,
    /// `timeout T` after the key: the element's timeout.
    pub timeout: Option<Ident>,
    /// The statements after the key, run on the element (nft's element
    /// expressions: `limit rate ...`, `counter`).
    pub stmts: Vec<Stmt>,
    /// The whole statement.
    pub span: Span,
}

/// `LEFT [OP] RIGHT [/ MASK]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// What is matched: a selector, a concatenation of them, with
    /// binary operators.
    pub left: Expr,
    /// The operator; [`RelOp::Implicit`] when none is written.
    pub op: RelOp,
    /// What it is compared with: a value, range, prefix, list, set or
    /// `@set`.
    pub right: Expr,
    /// `VALUE / MASK` (nft's flag comparison: `tcp flags syn / syn,ack`
    /// means `tcp flags & (syn|ack) == syn`).
    pub mask: Option<Expr>,
    /// The whole match.
    pub span: Span,
}

/// A relational operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// No operator: `==`, or for flags "any of these bits is set", or for
    /// a set membership.
    Implicit,
    /// `==` or `eq`.
    Eq,
    /// `!=` or `ne`.
    Ne,
    /// `<` or `lt`.
    Lt,
    /// `>` or `gt`.
    Gt,
    /// `<=` or `le`.
    Le,
    /// `>=` or `ge`.
    Ge,
    /// `!` or `not` before a flag: none of these bits is set.
    Not,
}

impl RelOp {
    /// The operator as nft prints it (`""` for the implicit one).
    pub fn text(self) -> &'static str {
        match self {
            RelOp::Implicit => "",
            RelOp::Eq => "==",
            RelOp::Ne => "!=",
            RelOp::Lt => "<",
            RelOp::Gt => ">",
            RelOp::Le => "<=",
            RelOp::Ge => ">=",
            RelOp::Not => "!",
        }
    }
}

/// A verdict and its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Which verdict.
    pub kind: VerdictKind,
    /// The verdict's text.
    pub span: Span,
}

/// The verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictKind {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `continue`.
    Continue,
    /// `return`.
    Return,
    /// `jump CHAIN`: a chain name (a word) or a variable.
    Jump(Expr),
    /// `goto CHAIN`.
    Goto(Expr),
}

/// `KEY vmap MAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictMap {
    /// The key: a selector or a concatenation.
    pub key: Expr,
    /// An anonymous map ([`ExprKind::Set`] of `key : verdict` elements), a
    /// `@map` or a variable.
    pub map: Expr,
    /// The whole statement.
    pub span: Span,
}

/// `counter`, `counter packets N bytes M`, or `counter name NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterStmt {
    /// `name NAME`: a named counter of the table (a word, a string or a
    /// variable).
    pub name: Option<Expr>,
    /// Initial packets.
    pub packets: Option<Num>,
    /// Initial bytes.
    pub bytes: Option<Num>,
    /// The whole statement.
    pub span: Span,
}

/// `limit rate [over] N/UNIT [burst M packets]` or `limit rate [over] N
/// BYTES/UNIT [burst M BYTES]`, or `limit name NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitStmt {
    /// The limit, or `None` for `limit name NAME`.
    pub rate: Option<RateSpec>,
    /// `limit name NAME`.
    pub name: Option<Expr>,
    /// The whole statement.
    pub span: Span,
}

/// The arguments of a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSpec {
    /// `over`: match what exceeds the rate (else what stays under it).
    pub over: bool,
    /// The number of packets or of bytes.
    pub amount: Num,
    /// `bytes`, `kbytes`, `mbytes` for a byte rate; `None` for packets.
    pub amount_unit: Option<Ident>,
    /// `second`, `minute`, `hour`, `day`, `week`.
    pub per: Ident,
    /// `burst M [packets|bytes|kbytes|mbytes]`.
    pub burst: Option<(Num, Option<Ident>)>,
}

/// `quota [over|until] N UNIT [used N UNIT]` or `quota name NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaStmt {
    /// The quota, or `None` for `quota name NAME`.
    pub quota: Option<QuotaSpec>,
    /// `quota name NAME`.
    pub name: Option<Expr>,
    /// The whole statement.
    pub span: Span,
}

/// The arguments of a quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSpec {
    /// `over`: match once the quota is used up (else until it is);
    /// `until` is the default, written out.
    pub mode: Option<Ident>,
    /// The size and its unit (`bytes`, `kbytes`, `mbytes`).
    pub amount: (Num, Ident),
    /// `used N UNIT`: what is already used.
    pub used: Option<(Num, Ident)>,
}

/// `log` and its options, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStmt {
    /// `prefix "..."`, `level warn`, `group 1`, `snaplen N`,
    /// `queue-threshold N`, `flags ...`: each the keyword and its value.
    pub options: Vec<LogOption>,
    /// The whole statement.
    pub span: Span,
}

/// One option of `log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOption {
    /// `prefix`, `level`, `group`, `snaplen`, `queue-threshold`, `flags`.
    pub key: Ident,
    /// The value: a string or word for `prefix` and `level`, a number for
    /// the others, the list of words for `flags`.
    pub value: Expr,
}

/// `fwd to DEVICE`, or `fwd ip|ip6 to ADDR device DEVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwdStmt {
    /// `ip` or `ip6` for neighbour forwarding.
    pub family: Option<Ident>,
    /// The device, or for neighbour forwarding the address.
    pub to: Expr,
    /// The device of neighbour forwarding.
    pub device: Option<Expr>,
    /// The whole statement.
    pub span: Span,
}

/// `TARGET set VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mangle {
    /// What would be written: `meta mark`, `ip ttl`...
    pub target: Expr,
    /// The value.
    pub value: Expr,
    /// The whole statement.
    pub span: Span,
}

/// `set NAME { ... }` or `map NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDecl {
    /// `map` (with data) rather than `set`.
    pub is_map: bool,
    /// The name.
    pub name: Ident,
    /// The body, in order.
    pub items: Vec<SetItem>,
    /// The whole declaration.
    pub span: Span,
}

/// What a set block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetItem {
    /// `type T [. T ...] [: DATA]`: type names.
    Type {
        /// The key's types, one per concatenated part.
        key: Vec<Ident>,
        /// A map's data type (`verdict`).
        data: Option<Ident>,
        /// The whole item.
        span: Span,
    },
    /// `typeof EXPR [. EXPR ...] [: DATA]`: the types of selectors.
    Typeof {
        /// The selectors, one per concatenated part.
        key: Vec<Expr>,
        /// A map's data: a type name such as `verdict`.
        data: Option<Ident>,
        /// The whole item.
        span: Span,
    },
    /// `flags interval, constant, ...`.
    Flags(Vec<Ident>),
    /// `elements = { ... }`: an [`ExprKind::Set`] or a variable.
    Elements(Expr),
    /// `size N`.
    Size(Num),
    /// `policy performance|memory`.
    Policy(Ident),
    /// `counter`: a counter per element.
    Counter(Span),
    /// `auto-merge`.
    AutoMerge(Span),
    /// `comment "..."`.
    Comment(Str),
    /// `timeout T`: the elements' timeout (a time string such as `30s`
    /// or `1m30s`, or a number of seconds).
    Timeout(Ident),
    /// `gc-interval T`: how often nft collects expired elements.
    GcInterval(Ident),
    /// Something nft knows that is refused.
    Unsupported(Unsupported),
}

/// `counter NAME { packets N bytes M }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDecl {
    /// The name.
    pub name: Ident,
    /// Initial packets.
    pub packets: Option<Num>,
    /// Initial bytes.
    pub bytes: Option<Num>,
    /// The whole declaration.
    pub span: Span,
}

/// `quota NAME { [over|until] N UNIT [used N UNIT] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDecl {
    /// The name.
    pub name: Ident,
    /// The quota.
    pub quota: QuotaSpec,
    /// The whole declaration.
    pub span: Span,
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Its text (parentheses included).
    pub span: Span,
}

impl Expr {
    /// Builds an expression.
    pub fn new(kind: ExprKind, span: Span) -> Self {
        Expr { kind, span }
    }
}

/// The expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// A header field: `ip saddr` (`proto` is `ip`, `field` is `saddr`).
    Payload {
        /// The protocol word.
        proto: Ident,
        /// The field word.
        field: Ident,
    },
    /// A raw payload load: `@nh,72,8` (base `ll`, `nh` or `th`, bit
    /// offset, bit length).
    Raw {
        /// `ll`, `nh` or `th`.
        base: Ident,
        /// Offset in bits from the base.
        offset: Num,
        /// Length in bits.
        len: Num,
    },
    /// Packet metadata: `meta KEY`, or a key nft allows without `meta`
    /// (`iifname`, `mark`, `pkttype`...).
    Meta {
        /// The key word.
        key: Ident,
    },
    /// An expression we do not compile (`ct state`, `fib daddr type`,
    /// `ip option rr`...): the rest of the rule is skipped, the checks
    /// refuse it by name.
    Unsupported(Unsupported),
    /// A number.
    Number(u64),
    /// A word: a symbolic value (`tcp`, `ssh`, `echo-request`, `ef`) or a
    /// name, resolved by the checks from the type it meets.
    Word(String),
    /// A `"quoted string"`: a device name, a log prefix, or a symbolic
    /// value like a word.
    Quoted(String),
    /// An address literal.
    Addr(AddrLit),
    /// `$NAME`.
    Variable(String),
    /// `@NAME`: a named set or map.
    SetRef(String),
    /// `LEFT OP RIGHT` with a bit operator.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `A . B . C`: a concatenation, two parts or more.
    Concat(Vec<Expr>),
    /// `VALUE/LEN`.
    Prefix {
        /// The address.
        value: Box<Expr>,
        /// The prefix length.
        len: Num,
    },
    /// `LOW-HIGH`.
    Range {
        /// Low end (included).
        low: Box<Expr>,
        /// High end (included).
        high: Box<Expr>,
    },
    /// `A, B, C` without braces: flags ORed together (`tcp flags syn,ack`).
    List(Vec<Expr>),
    /// `{ ELEMENT, ... }`: an anonymous set or map.
    Set(Vec<SetElem>),
    /// A verdict as the data of a map element.
    Verdict(Box<VerdictKind>),
    /// `-N` (only as a `define` value, as nft allows).
    Negative(u64),
}

/// A binary bit operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `&` or `and`.
    And,
    /// `|` or `or`.
    Or,
    /// `^` or `xor`.
    Xor,
    /// `<<` or `lshift`.
    Shl,
    /// `>>` or `rshift`.
    Shr,
}

impl BinOp {
    /// The operator as nft prints it.
    pub fn text(self) -> &'static str {
        match self {
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
        }
    }
}

/// An element of a set: a key, and for a map the data after `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetElem {
    /// The key: a value, range, prefix, concatenation, variable or (a set
    /// inside a set) a nested set, which nft flattens.
    pub key: Expr,
    /// `: DATA` in a map. (This and the other rare parts are boxed: a set
    /// of a million elements is a million of these.)
    pub data: Option<Box<Expr>>,
    /// `comment "..."` after the element.
    pub comment: Option<Box<Str>>,
    /// `timeout T` after the element: its own timeout.
    pub timeout: Option<Box<Ident>>,
    /// The whole element.
    pub span: Span,
}
