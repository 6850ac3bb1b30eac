//! Commands and blocks: `flush ruleset`, `define`, `table { }`, `add
//! ...`, and what tables, chains, sets and named objects hold.

use pktmatch::Span;

use super::Parser;
use crate::error::Error;
use crate::syntax::ast::*;
use crate::syntax::token::Tok;

/// The families nft knows; the checks refuse all but `netdev`.
const FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

/// Table items nft knows that we skip for the checks to refuse (`ct`
/// takes a second word: `ct helper`, `ct timeout`, `ct expectation`).
const UNSUPPORTED_OBJECTS: [&str; 5] = ["flowtable", "ct", "secmark", "synproxy", "limit"];

impl Parser<'_> {
    /// The whole file.
    pub(super) fn ruleset(&mut self) -> Result<Ruleset, Error> {
        let mut commands = Vec::new();
        loop {
            self.skip_separators();
            if *self.tok() == Tok::Eof {
                return Ok(Ruleset { commands });
            }
            if self.include()? {
                continue;
            }
            commands.push(self.command()?);
            match self.tok() {
                Tok::Eof => {}
                _ => self.separator()?,
            }
        }
    }

    /// One top-level command.
    fn command(&mut self) -> Result<Command, Error> {
        if let Some(define) = self.define()? {
            return Ok(Command::Define(define));
        }
        let start = self.peek().span;
        match self.word() {
            Some("flush") => {
                self.bump();
                let end = self.expect_word("ruleset").map_err(|_| {
                    self.unexpected("`ruleset` (only `flush ruleset` is supported)")
                })?;
                Ok(Command::FlushRuleset(start.to(end)))
            }
            Some("table") => {
                self.bump();
                self.table(start, true).map(Command::Table)
            }
            Some("add") => {
                self.bump();
                self.add(start)
            }
            Some(
                w @ ("insert" | "replace" | "create" | "delete" | "destroy" | "reset" | "list"
                | "rename" | "import" | "export" | "monitor" | "describe" | "get"),
            ) => Err(Error::new(
                format!(
                    "`{w}`: not supported in a ruleset file; nft2bpf reads table blocks, `add` commands, `define` and `flush ruleset`"
                ),
                start,
            )),
            _ => {
                Err(self
                    .unexpected("a command (`table`, `add`, `define`, `flush ruleset`, `include`)"))
            }
        }
    }

    /// One [`SetCommand`], alone in the text.
    pub(super) fn set_command(&mut self) -> Result<SetCommand, Error> {
        self.skip_separators();
        let cmd = self.one_set_command()?;
        self.skip_separators();
        if *self.tok() != Tok::Eof {
            return Err(self.unexpected("the end of the command"));
        }
        Ok(cmd)
    }

    /// [`SetCommand`]s, each ended by a newline, `;` or the end.
    pub(super) fn set_commands(&mut self) -> Result<Vec<SetCommand>, Error> {
        let mut out = Vec::new();
        loop {
            self.skip_separators();
            if *self.tok() == Tok::Eof {
                return Ok(out);
            }
            out.push(self.one_set_command()?);
            if !matches!(self.tok(), Tok::Newline | Tok::Semi | Tok::Eof) {
                return Err(self.unexpected("`;` or the end of the line"));
            }
        }
    }

    /// A [`SetCommand`], up to its end.
    fn one_set_command(&mut self) -> Result<SetCommand, Error> {
        let start = self.peek().span;
        let verbs = "`add element`, `create element`, `delete element`, `flush set` or `list set`";
        let verb_word = self.word().unwrap_or_default().to_string();
        let verb = match self.word() {
            Some("add") => SetVerb::Add,
            Some("create") => SetVerb::Create,
            Some("delete") => SetVerb::Delete,
            Some("flush") => SetVerb::Flush,
            Some("list") => SetVerb::List,
            _ => return Err(self.unexpected(verbs)),
        };
        self.bump();
        let object = self.keyword("`element`, `set` or `map`")?;
        let with_elements = matches!(verb, SetVerb::Add | SetVerb::Create | SetVerb::Delete);
        let fits = if with_elements {
            object.name == "element"
        } else {
            matches!(object.name.as_str(), "set" | "map")
        };
        if !fits {
            return Err(Error::new(
                format!(
                    "`{} {}`: not a command on a set; nft2bpf changes running sets with {verbs}",
                    verb_word, object.name
                ),
                start.to(object.span),
            ));
        }
        let table = self.table_name()?;
        let set = self.keyword("set name")?;
        let mut span = start.to(set.span);
        let elements = if with_elements {
            if *self.tok() != Tok::LBrace {
                return Err(self.unexpected("`{` and the elements"));
            }
            let e = self.set_or_variable()?;
            span = span.to(e.span);
            Some(e)
        } else {
            None
        };
        Ok(SetCommand {
            verb,
            table,
            set,
            elements,
            span,
        })
    }

    /// `define NAME = VALUE`, `redefine NAME = VALUE`, `undefine NAME`, if
    /// one comes next (without its separator).
    fn define(&mut self) -> Result<Option<Define>, Error> {
        let kind = match self.word() {
            Some("define") => DefineKind::Define,
            Some("redefine") => DefineKind::Redefine,
            Some("undefine") => DefineKind::Undefine,
            _ => return Ok(None),
        };
        let start = self.bump().span;
        let name = self.keyword("variable name")?;
        if kind == DefineKind::Undefine {
            let span = start.to(name.span);
            return Ok(Some(Define {
                kind,
                name,
                value: None,
                span,
            }));
        }
        self.expect(&Tok::Assign)?;
        let value = self.initializer()?;
        let span = start.to(value.span);
        Ok(Some(Define {
            kind,
            name,
            value: Some(value),
            span,
        }))
    }

    /// `[FAMILY] NAME [{ ... }]` after `table`; the body is required after
    /// `table`, optional after `add table`.
    fn table(&mut self, start: Span, body_required: bool) -> Result<TableCmd, Error> {
        let table = self.table_name()?;
        let mut span = start.to(table.name.span);
        let mut items = Vec::new();
        if *self.tok() == Tok::LBrace || body_required {
            let (body, end) = self.block(Self::table_item)?;
            items = body;
            span = span.to(end);
        }
        Ok(TableCmd { table, items, span })
    }

    /// `[FAMILY] NAME` (a family is a word of [`FAMILIES`] followed by
    /// another word).
    fn table_name(&mut self) -> Result<TableRef, Error> {
        let first = self.keyword("family or table name")?;
        let named_next = matches!(self.tok(), Tok::Word(_));
        if FAMILIES.contains(&first.name.as_str()) && named_next {
            let name = self.keyword("table name")?;
            return Ok(TableRef {
                family: Some(first),
                name,
            });
        }
        Ok(TableRef {
            family: None,
            name: first,
        })
    }

    /// `add table|chain|rule|set|map|element ...`.
    fn add(&mut self, start: Span) -> Result<Command, Error> {
        let what = self.keyword("`table`, `chain`, `rule`, `set`, `map` or `element`")?;
        if what.name == "table" {
            return self.table(start, false).map(Command::Table);
        }
        if !matches!(
            what.name.as_str(),
            "chain" | "rule" | "set" | "map" | "element"
        ) {
            return Err(Error::new(
                format!(
                    "`add {}`: not supported; nft2bpf reads `add table|chain|rule|set|map|element`",
                    what.name
                ),
                what.span,
            ));
        }
        let table = self.table_name()?;
        let cmd = match what.name.as_str() {
            "chain" => {
                let name = self.keyword("chain name")?;
                let decl_start = name.span;
                let (items, end) = if *self.tok() == Tok::LBrace {
                    self.block(Self::chain_item)?
                } else {
                    (Vec::new(), name.span)
                };
                let span = start.to(end);
                Command::Chain(InTable {
                    table,
                    item: ChainDecl {
                        name,
                        items,
                        span: decl_start.to(end),
                    },
                    span,
                })
            }
            "rule" => {
                let chain = self.keyword("chain name")?;
                let rule = self.rule()?;
                let span = start.to(rule.span);
                Command::Rule(InTable {
                    table,
                    item: RuleCmd { chain, rule },
                    span,
                })
            }
            "element" => {
                let set = self.keyword("set name")?;
                let elements = self.set_or_variable()?;
                let span = start.to(elements.span);
                Command::Element(InTable {
                    table,
                    item: ElementCmd { set, elements },
                    span,
                })
            }
            _ => {
                let decl = self.set_decl(what.name == "map", what.span)?;
                let span = start.to(decl.span);
                Command::Set(InTable {
                    table,
                    item: decl,
                    span,
                })
            }
        };
        Ok(cmd)
    }

    /// `{ ITEMS }`, each item read by `item` and ended by a separator;
    /// returns the items and the span of the closing brace.
    fn block<T>(
        &mut self,
        item: fn(&mut Self) -> Result<Option<T>, Error>,
    ) -> Result<(Vec<T>, Span), Error> {
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        let mut items = Vec::new();
        loop {
            self.skip_separators();
            if let Some(end) = self.eat(&Tok::RBrace) {
                self.leave();
                return Ok((items, end));
            }
            if self.include()? {
                continue;
            }
            if let Some(it) = item(self)? {
                items.push(it);
            }
            self.separator()?;
        }
    }

    /// One item of a table block.
    fn table_item(&mut self) -> Result<Option<TableItem>, Error> {
        if let Some(d) = self.define()? {
            return Ok(Some(TableItem::Define(d)));
        }
        let start = self.peek().span;
        let item = match self.word() {
            Some("chain") => {
                self.bump();
                let name = self.keyword("chain name")?;
                let (items, end) = self.block(Self::chain_item)?;
                TableItem::Chain(ChainDecl {
                    name,
                    items,
                    span: start.to(end),
                })
            }
            Some(kind @ ("set" | "map")) => {
                let is_map = kind == "map";
                self.bump();
                TableItem::Set(self.set_decl(is_map, start)?)
            }
            Some("counter") => {
                self.bump();
                TableItem::Counter(self.counter_decl(start)?)
            }
            Some("quota") => {
                self.bump();
                TableItem::Quota(self.quota_decl(start)?)
            }
            Some("flags") => {
                self.bump();
                TableItem::Flags(self.word_list("table flag")?)
            }
            Some("comment") => {
                self.bump();
                TableItem::Comment(self.quoted("comment")?)
            }
            Some(w) if UNSUPPORTED_OBJECTS.contains(&w) => {
                let mut what = w.to_string();
                let keyword = self.bump();
                let mut span = keyword.span;
                if what == "ct" {
                    let kind = self.keyword("`helper`, `timeout` or `expectation`")?;
                    what = format!("ct {}", kind.name);
                    span = span.to(kind.span);
                }
                self.skip_statement(span);
                TableItem::Unsupported(Unsupported { what, span })
            }
            _ => {
                return Err(self.unexpected(
                    "`chain`, `set`, `map`, `counter`, `quota`, `flags`, `comment` or `define`",
                ));
            }
        };
        Ok(Some(item))
    }

    /// One item of a chain block: a hook spec, a policy, a comment, or a
    /// rule.
    fn chain_item(&mut self) -> Result<Option<ChainItem>, Error> {
        if let Some(d) = self.define()? {
            return Ok(Some(ChainItem::Define(d)));
        }
        let item = match self.word() {
            Some("type") => ChainItem::Hook(self.hook_spec()?),
            Some("policy") => {
                self.bump();
                let policy = match self.tok().clone() {
                    Tok::Dollar => self.variable()?,
                    Tok::Word(w) => Expr::new(ExprKind::Word(w), self.bump().span),
                    _ => return Err(self.unexpected("`accept` or `drop`")),
                };
                ChainItem::Policy(policy)
            }
            Some("comment") => {
                self.bump();
                ChainItem::Comment(self.quoted("comment")?)
            }
            Some("flags") => {
                self.bump();
                ChainItem::Flags(self.word_list("chain flag")?)
            }
            _ => ChainItem::Rule(self.rule()?),
        };
        Ok(Some(item))
    }

    /// `type T hook H [device D | devices = { ... }] [priority P]`.
    fn hook_spec(&mut self) -> Result<HookSpec, Error> {
        let start = self.expect_word("type")?;
        let chain_type = self.keyword("chain type")?;
        self.expect_word("hook")?;
        let hook = self.keyword("hook name")?;
        let mut span = start.to(hook.span);
        let mut devices = Vec::new();
        if self.eat_word("device").is_some() {
            let d = self.device_expr()?;
            span = span.to(d.span);
            devices.push(d);
        } else if self.eat_word("devices").is_some() {
            self.expect(&Tok::Assign)?;
            if *self.tok() == Tok::Dollar {
                let v = self.variable()?;
                span = span.to(v.span);
                devices.push(v);
            } else {
                let open = self.expect(&Tok::LBrace)?;
                self.enter(open)?;
                loop {
                    self.skip_newlines();
                    let d = self.device_expr()?;
                    devices.push(d);
                    self.skip_newlines();
                    if self.eat(&Tok::Comma).is_none() {
                        break;
                    }
                    self.skip_newlines();
                    if *self.tok() == Tok::RBrace {
                        break;
                    }
                }
                span = span.to(self.expect(&Tok::RBrace)?);
                self.leave();
            }
        }
        let mut priority = None;
        if let Some(at) = self.eat_word("priority") {
            let p = self.priority(at)?;
            span = span.to(p.span);
            priority = Some(p);
        }
        Ok(HookSpec {
            chain_type,
            hook,
            devices,
            priority,
            span,
        })
    }

    /// `N`, `-N`, `NAME`, `NAME + N`, `NAME - N` or `$VAR` after
    /// `priority`.
    fn priority(&mut self, at: Span) -> Result<Priority, Error> {
        let base = match self.tok().clone() {
            Tok::Dash => {
                let minus = self.bump().span;
                let n = self.number("number")?;
                Expr::new(ExprKind::Negative(n.value), minus.to(n.span))
            }
            Tok::Number(n) => Expr::new(ExprKind::Number(n), self.bump().span),
            Tok::Word(w) => Expr::new(ExprKind::Word(w), self.bump().span),
            Tok::Dollar => self.variable()?,
            _ => return Err(self.unexpected("priority")),
        };
        let mut span = at.to(base.span);
        let mut offset = None;
        if matches!(base.kind, ExprKind::Word(_)) {
            let sign = match self.tok() {
                Tok::Plus => Some(1),
                Tok::Dash => Some(-1),
                _ => None,
            };
            if let Some(sign) = sign {
                self.bump();
                let n = self.number("number")?;
                span = span.to(n.span);
                let value = i64::try_from(n.value)
                    .map_err(|_| Error::new("priority offset out of range", n.span))?;
                offset = Some(sign * value);
            }
        }
        Ok(Priority { base, offset, span })
    }

    /// `NAME { ITEMS }` after `set` or `map`.
    fn set_decl(&mut self, is_map: bool, start: Span) -> Result<SetDecl, Error> {
        let name = self.keyword("set name")?;
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        let mut items = Vec::new();
        let end = loop {
            self.skip_separators();
            if let Some(end) = self.eat(&Tok::RBrace) {
                break end;
            }
            if self.include()? {
                continue;
            }
            let item_start = self.peek().span;
            let item = match self.word() {
                Some("type") => {
                    self.bump();
                    let mut key = vec![self.keyword("type name")?];
                    while self.eat(&Tok::Dot).is_some() {
                        key.push(self.keyword("type name")?);
                    }
                    let data = if self.eat(&Tok::Colon).is_some() {
                        Some(self.keyword("type name")?)
                    } else {
                        None
                    };
                    let last = data.as_ref().unwrap_or(&key[key.len() - 1]).span;
                    SetItem::Type {
                        key,
                        data,
                        span: item_start.to(last),
                    }
                }
                Some("typeof") => {
                    self.bump();
                    let mut key = vec![self.selector()?];
                    while self.eat(&Tok::Dot).is_some() {
                        key.push(self.selector()?);
                    }
                    let data = if self.eat(&Tok::Colon).is_some() {
                        Some(self.keyword("`verdict`")?)
                    } else {
                        None
                    };
                    let last = data.as_ref().map_or(key[key.len() - 1].span, |d| d.span);
                    SetItem::Typeof {
                        key,
                        data,
                        span: item_start.to(last),
                    }
                }
                Some("flags") => {
                    self.bump();
                    SetItem::Flags(self.word_list("set flag")?)
                }
                Some("elements") => {
                    self.bump();
                    self.expect(&Tok::Assign)?;
                    items.push(SetItem::Elements(self.set_or_variable()?));
                    // nft needs no separator after the elements.
                    continue;
                }
                Some("size") => {
                    self.bump();
                    SetItem::Size(self.number("number")?)
                }
                Some("policy") => {
                    self.bump();
                    SetItem::Policy(self.keyword("`performance` or `memory`")?)
                }
                Some("counter") => SetItem::Counter(self.bump().span),
                Some("auto-merge") => SetItem::AutoMerge(self.bump().span),
                Some("comment") => {
                    self.bump();
                    SetItem::Comment(self.quoted("comment")?)
                }
                Some("timeout") => {
                    self.bump();
                    SetItem::Timeout(self.time("timeout")?)
                }
                Some("gc-interval") => {
                    self.bump();
                    SetItem::GcInterval(self.time("gc-interval")?)
                }
                _ => {
                    return Err(self.unexpected(
                        "`type`, `typeof`, `flags`, `elements`, `size`, `policy`, `counter`, `auto-merge` or `comment`",
                    ));
                }
            };
            items.push(item);
            self.separator()?;
        };
        self.leave();
        Ok(SetDecl {
            is_map,
            name,
            items,
            span: start.to(end),
        })
    }

    /// `NAME { [packets N bytes M] }` after `counter`.
    fn counter_decl(&mut self, start: Span) -> Result<CounterDecl, Error> {
        let name = self.keyword("counter name")?;
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        let (mut packets, mut bytes) = (None, None);
        let end = loop {
            self.skip_separators();
            if let Some(end) = self.eat(&Tok::RBrace) {
                break end;
            }
            if self.eat_word("packets").is_some() {
                packets = Some(self.number("number")?);
            } else if self.eat_word("bytes").is_some() {
                bytes = Some(self.number("number")?);
            } else if self.eat_word("comment").is_some() {
                self.quoted("comment")?;
            } else {
                return Err(self.unexpected("`packets`, `bytes` or `comment`"));
            }
        };
        self.leave();
        Ok(CounterDecl {
            name,
            packets,
            bytes,
            span: start.to(end),
        })
    }

    /// `NAME { [over|until] N UNIT [used N UNIT] }` after `quota`.
    fn quota_decl(&mut self, start: Span) -> Result<QuotaDecl, Error> {
        let name = self.keyword("quota name")?;
        let open = self.expect(&Tok::LBrace)?;
        self.enter(open)?;
        self.skip_separators();
        let quota = self.quota_spec()?;
        loop {
            self.skip_separators();
            if self.eat_word("comment").is_some() {
                self.quoted("comment")?;
            } else {
                break;
            }
        }
        let end = self.expect(&Tok::RBrace)?;
        self.leave();
        Ok(QuotaDecl {
            name,
            quota,
            span: start.to(end),
        })
    }

    /// `WORD [, WORD ...]`.
    fn word_list(&mut self, what: &str) -> Result<Vec<Ident>, Error> {
        let mut words = vec![self.keyword(what)?];
        while self.eat(&Tok::Comma).is_some() {
            words.push(self.keyword(what)?);
        }
        Ok(words)
    }

    /// A quoted string.
    pub(super) fn quoted(&mut self, what: &str) -> Result<Str, Error> {
        match self.tok().clone() {
            Tok::Quoted(name) => Ok(Ident {
                name,
                span: self.bump().span,
            }),
            _ => Err(self.unexpected(&format!("quoted string ({what})"))),
        }
    }
}
