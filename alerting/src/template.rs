//! The subset of Go's `text/template` that Prometheus alert labels and annotations use:
//! text and `{{ }}` actions with trim markers and comments, pipelines, variables (`$labels`,
//! `$value`, `:=`, `=`), field chains, `if`/`else if`/`else`, `range` (with `$i, $e :=`) and
//! `with`, Go's builtins (`and or not len index print printf println eq ne lt le gt ge`), and
//! Prometheus' template functions (`humanize*`, `query`, `first`, `label`, `value`,
//! `toUpper`, `reReplaceAll`, `match`, `stripPort`, ...), with `missingkey=zero`.
//!
//! Written here rather than taken from `gtmpl` (the Rust port of Go templates): its last
//! release is from 2021, it prints a missing map key as `<no value>` where Prometheus prints
//! nothing, its functions are plain `fn` pointers so `query` could not reach the storage, and
//! it prints numbers its own way where a rule unit test compares Go's `%v` byte for byte.
//! Not supported: `define`/`template`/`block`, `break`/`continue`, method calls, and `html`
//! / `js` escaping functions.

use crate::gofmt;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A value inside a template.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
    /// One element of a `query` result: labels and value.
    Sample(BTreeMap<String, String>, f64),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map",
            Value::List(_) => "slice",
            Value::Sample(..) => "*template.sample",
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Sample(..) => true,
        }
    }

    /// `fmt.Sprint` of the value.
    pub fn print(&self) -> String {
        match self {
            Value::Nil => "<no value>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_v(*f),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let inner: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
            Value::List(l) => {
                let inner: Vec<String> = l.iter().map(Value::print).collect();
                format!("[{}]", inner.join(" "))
            }
            Value::Sample(l, v) => {
                let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("&{{map[{}] {}}}", inner.join(" "), gofmt::format_v(*v))
            }
        }
    }
}

impl From<&BTreeMap<String, String>> for Value {
    fn from(m: &BTreeMap<String, String>) -> Self {
        Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        )
    }
}

/// Runs a PromQL instant query for the `query` template function: labels and value of each
/// element.
pub type QueryFn<'a> = &'a dyn Fn(&str) -> Result<QueryResult, String>;

/// The elements of a query result: labels and value.
pub type QueryResult = Vec<(BTreeMap<String, String>, f64)>;

// ---------------------------------------------------------------------------------------------
// Lexing and parsing

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Var(String),
    Str(String),
    Num(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Dot,
}

#[derive(Clone, Debug)]
enum Arg {
    /// `.a.b` (empty: `.`).
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Clone, Debug)]
struct Pipe {
    decl: Vec<String>,
    /// `=` instead of `:=`.
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

/// The functions a template may call (checked when parsing, as Go does).
const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "urlquery",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// One `{{ }}` action's tokens, or a piece of text.
enum Piece {
    Text(String),
    Action(usize, Vec<Tok>),
}

fn line_of(src: &str, byte: usize) -> usize {
    src[..byte.min(src.len())].matches('\n').count() + 1
}

fn split(src: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = 0usize;
    let mut trim_next = false;
    while rest < src.len() {
        let Some(open) = src[rest..].find("{{").map(|i| i + rest) else {
            let mut t = &src[rest..];
            if trim_next {
                t = t.trim_start();
            }
            pieces.push(Piece::Text(t.to_string()));
            break;
        };
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut start = open + 2;
        if src[start..].starts_with("- ")
            || src[start..].starts_with("-\t")
            || src[start..].starts_with("-\n")
        {
            text = text.trim_end();
            start += 1;
        }
        pieces.push(Piece::Text(text.to_string()));
        let line = line_of(src, open);
        let inner_start = start;
        // Comments may contain "}}" only at their end.
        let trimmed = src[inner_start..].trim_start();
        if trimmed.starts_with("/*") {
            let Some(end) = src[inner_start..].find("*/") else {
                return Err(format!("{line}: unclosed comment"));
            };
            let after = inner_start + end + 2;
            let rest_after = &src[after..];
            let close_ws = rest_after.len() - rest_after.trim_start().len();
            let after_ws = after + close_ws;
            if src[after_ws..].starts_with("-}}") {
                trim_next = true;
                rest = after_ws + 3;
            } else if src[after..].starts_with("}}") {
                trim_next = false;
                rest = after + 2;
            } else {
                return Err(format!("{line}: comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, end, trim) = lex_action(src, inner_start, line)?;
        pieces.push(Piece::Action(line, toks));
        trim_next = trim;
        rest = end;
    }
    Ok(pieces)
}

/// Lexes one action from `start` (after `{{`) up to and including `}}`; returns the tokens,
/// the byte after the action and whether it ended with `-}}`.
fn lex_action(src: &str, start: usize, line: usize) -> Result<(Vec<Tok>, usize, bool), String> {
    let b = src.as_bytes();
    let mut i = start;
    let mut toks = Vec::new();
    let ident_char = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    loop {
        if i >= b.len() {
            return Err(format!("{line}: unclosed action"));
        }
        let c = b[i];
        if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
            if src[i..].trim_start().starts_with("-}}") {
                let ws = src[i..].len() - src[i..].trim_start().len();
                return Ok((toks, i + ws + 3, true));
            }
            i += 1;
            continue;
        }
        if src[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        match c {
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let mut s = String::new();
                let mut j = i + 1;
                let mut chars = src[j..].char_indices();
                loop {
                    let Some((k, ch)) = chars.next() else {
                        return Err(format!("{line}: unterminated quoted string"));
                    };
                    match ch {
                        '"' => {
                            j += k + 1;
                            break;
                        }
                        '\n' => return Err(format!("{line}: unterminated quoted string")),
                        '\\' => {
                            let Some((_, e)) = chars.next() else {
                                return Err(format!("{line}: unterminated quoted string"));
                            };
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                '\'' => s.push('\''),
                                other => {
                                    return Err(format!(
                                        "{line}: invalid syntax in string escape \\{other}"
                                    ))
                                }
                            }
                        }
                        other => s.push(other),
                    }
                }
                toks.push(Tok::Str(s));
                i = j;
            }
            b'`' => {
                let Some(end) = src[i + 1..].find('`') else {
                    return Err(format!("{line}: unterminated raw quoted string"));
                };
                toks.push(Tok::Str(src[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'.' => {
                let j = i + 1;
                if j < b.len() && (b[j] == b'_' || b[j].is_ascii_alphabetic()) {
                    let mut k = j;
                    while k < b.len() && ident_char(b[k]) {
                        k += 1;
                    }
                    toks.push(Tok::Field(src[j..k].to_string()));
                    i = k;
                } else if j < b.len() && b[j].is_ascii_digit() {
                    let mut k = j;
                    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'.') {
                        k += 1;
                    }
                    toks.push(Tok::Num(src[i..k].to_string()));
                    i = k;
                } else {
                    toks.push(Tok::Dot);
                    i += 1;
                }
            }
            b'$' => {
                let mut k = i + 1;
                while k < b.len() && ident_char(b[k]) {
                    k += 1;
                }
                toks.push(Tok::Var(src[i..k].to_string()));
                i = k;
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let mut k = i + 1;
                while k < b.len()
                    && (b[k].is_ascii_alphanumeric()
                        || b[k] == b'.'
                        || ((b[k] == b'-' || b[k] == b'+') && matches!(b[k - 1], b'e' | b'E')))
                {
                    k += 1;
                }
                toks.push(Tok::Num(src[i..k].to_string()));
                i = k;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let mut k = i;
                while k < b.len() && ident_char(b[k]) {
                    k += 1;
                }
                toks.push(Tok::Ident(src[i..k].to_string()));
                i = k;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(format!("{line}: unexpected {ch:?} in command"));
            }
        }
    }
}

struct Parser {
    pieces: Vec<Piece>,
    pos: usize,
    /// Declared variables, innermost scope last.
    vars: Vec<Vec<String>>,
}

enum Closer {
    Eof,
    End,
    Else(usize, Vec<Tok>),
}

impl Parser {
    fn declared(&self, v: &str) -> bool {
        self.vars.iter().any(|s| s.iter().any(|x| x == v))
    }

    fn list(&mut self) -> Result<(Vec<Node>, Closer), String> {
        let mut out = Vec::new();
        while self.pos < self.pieces.len() {
            let piece = std::mem::replace(&mut self.pieces[self.pos], Piece::Text(String::new()));
            self.pos += 1;
            match piece {
                Piece::Text(t) => {
                    if !t.is_empty() {
                        out.push(Node::Text(t))
                    }
                }
                Piece::Action(line, toks) => match toks.first() {
                    Some(Tok::Ident(k)) if k == "end" => {
                        if toks.len() > 1 {
                            return Err(format!("{line}: unexpected {:?} in end", toks[1]));
                        }
                        return Ok((out, Closer::End));
                    }
                    Some(Tok::Ident(k)) if k == "else" => {
                        return Ok((out, Closer::Else(line, toks[1..].to_vec())))
                    }
                    Some(Tok::Ident(k)) if k == "if" || k == "range" || k == "with" => {
                        let kw = k.clone();
                        out.push(self.control(&kw, line, toks[1..].to_vec())?);
                    }
                    Some(Tok::Ident(k))
                        if matches!(
                            k.as_str(),
                            "define" | "template" | "block" | "break" | "continue"
                        ) =>
                    {
                        return Err(format!("{line}: {k:?} is not supported by pipewatch"))
                    }
                    None => return Err(format!("{line}: missing value for command")),
                    _ => {
                        let pipe = self.pipeline(line, &toks, true)?;
                        out.push(Node::Action(pipe));
                    }
                },
            }
        }
        Ok((out, Closer::Eof))
    }

    fn control(&mut self, kw: &str, line: usize, toks: Vec<Tok>) -> Result<Node, String> {
        self.vars.push(Vec::new());
        let pipe = self.pipeline(line, &toks, true)?;
        let (body, end) = self.list()?;
        let els = match end {
            Closer::Eof => return Err(format!("{line}: unexpected EOF")),
            Closer::End => Vec::new(),
            Closer::Else(eline, rest) => {
                if let Some(Tok::Ident(k)) = rest.first() {
                    if kw != "range" && (k == "if" || k == "with") && k == kw {
                        // `else if` / `else with`: a nested block that shares our `end`.
                        self.vars.pop();
                        self.vars.push(Vec::new());
                        vec![self.control(kw, eline, rest[1..].to_vec())?]
                    } else {
                        return Err(format!("{eline}: unexpected {k:?} after else"));
                    }
                } else if !rest.is_empty() {
                    return Err(format!("{eline}: unexpected {:?} in else", rest[0]));
                } else {
                    let (els, end) = self.list()?;
                    match end {
                        Closer::End => els,
                        Closer::Eof => return Err(format!("{line}: unexpected EOF")),
                        Closer::Else(l, _) => return Err(format!("{l}: expected end; found else")),
                    }
                }
            }
        };
        self.vars.pop();
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }

    fn pipeline(&mut self, line: usize, toks: &[Tok], allow_decl: bool) -> Result<Pipe, String> {
        let mut i = 0;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $e :=`
        if allow_decl {
            let mut j = 0;
            let mut names = Vec::new();
            while let Some(Tok::Var(v)) = toks.get(j) {
                names.push(v.clone());
                j += 1;
                match toks.get(j) {
                    Some(Tok::Comma) if names.len() == 1 => j += 1,
                    Some(Tok::Declare) | Some(Tok::Assign) => break,
                    _ => {
                        names.clear();
                        break;
                    }
                }
            }
            if !names.is_empty() {
                match toks.get(j) {
                    Some(Tok::Declare) => {
                        for n in &names {
                            if let Some(scope) = self.vars.last_mut() {
                                scope.push(n.clone());
                            }
                        }
                        decl = names;
                        i = j + 1;
                    }
                    Some(Tok::Assign) => {
                        for n in &names {
                            if !self.declared(n) {
                                return Err(format!("{line}: undefined variable {n:?}"));
                            }
                        }
                        decl = names;
                        assign = true;
                        i = j + 1;
                    }
                    _ => {}
                }
            }
        }
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        while i < toks.len() {
            match &toks[i] {
                Tok::Pipe => {
                    if cmd.is_empty() {
                        return Err(format!("{line}: missing command"));
                    }
                    cmds.push(std::mem::take(&mut cmd));
                    i += 1;
                }
                _ => {
                    let (arg, next) = self.operand(line, toks, i)?;
                    cmd.push(arg);
                    i = next;
                }
            }
        }
        if cmd.is_empty() {
            return Err(format!("{line}: missing value for command"));
        }
        cmds.push(cmd);
        Ok(Pipe { decl, assign, cmds })
    }

    fn fields(toks: &[Tok], mut i: usize) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        while let Some(Tok::Field(f)) = toks.get(i) {
            out.push(f.clone());
            i += 1;
        }
        (out, i)
    }

    fn operand(&mut self, line: usize, toks: &[Tok], i: usize) -> Result<(Arg, usize), String> {
        Ok(match &toks[i] {
            Tok::Dot => (Arg::Field(Vec::new()), i + 1),
            Tok::Field(_) => {
                let (f, n) = Self::fields(toks, i);
                (Arg::Field(f), n)
            }
            Tok::Var(v) => {
                if v != "$" && !self.declared(v) {
                    return Err(format!("{line}: undefined variable {v:?}"));
                }
                let (f, n) = Self::fields(toks, i + 1);
                (Arg::Var(v.clone(), f), n)
            }
            Tok::Str(s) => (Arg::Str(s.clone()), i + 1),
            Tok::Num(s) => (
                number(s).ok_or_else(|| format!("{line}: bad number syntax: {s:?}"))?,
                i + 1,
            ),
            Tok::Ident(id) => match id.as_str() {
                "true" => (Arg::Bool(true), i + 1),
                "false" => (Arg::Bool(false), i + 1),
                "nil" => (Arg::Nil, i + 1),
                f if FUNCS.contains(&f) => (Arg::Func(f.to_string()), i + 1),
                f => return Err(format!("{line}: function {f:?} not defined")),
            },
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        None => return Err(format!("{line}: unclosed left paren")),
                        _ => {}
                    }
                    j += 1;
                }
                let inner = self.pipeline(line, &toks[i + 1..j], false)?;
                let (f, n) = Self::fields(toks, j + 1);
                (Arg::Sub(Box::new(inner), f), n)
            }
            other => return Err(format!("{line}: unexpected {other:?} in operand")),
        })
    }
}

fn number(s: &str) -> Option<Arg> {
    let is_float = s.contains(['.', 'e', 'E']) && !s.starts_with("0x") && !s.starts_with("0X");
    if !is_float {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Arg::Int(i));
        }
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return i64::from_str_radix(h, 16).ok().map(Arg::Int);
        }
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Arg::Float)
}

impl Template {
    /// Parses a template; the error names the line and what is wrong, as Go's parser does.
    pub fn parse(src: &str) -> Result<Template, String> {
        let pieces = split(src)?;
        let mut p = Parser {
            pieces,
            pos: 0,
            vars: vec![Vec::new()],
        };
        let (nodes, end) = p.list()?;
        match end {
            Closer::Eof => Ok(Template { nodes }),
            Closer::End => Err("unexpected {{end}}".into()),
            Closer::Else(line, _) => Err(format!("{line}: unexpected {{{{else}}}}")),
        }
    }

    /// Executes the template with `data` as `.` (and `$`).
    pub fn render(&self, data: &Value, env: &Env<'_>) -> Result<String, String> {
        let mut ex = Exec {
            env,
            vars: vec![vec![("$".to_string(), data.clone())]],
            out: String::new(),
        };
        ex.nodes(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// What template functions can reach besides their arguments.
pub struct Env<'a> {
    pub query: Option<QueryFn<'a>>,
    pub external_url: &'a str,
}

// ---------------------------------------------------------------------------------------------
// Execution

struct Exec<'a, 'b> {
    env: &'b Env<'a>,
    vars: Vec<Vec<(String, Value)>>,
    out: String,
}

impl Exec<'_, '_> {
    fn var(&self, name: &str) -> Result<Value, String> {
        for scope in self.vars.iter().rev() {
            if let Some((_, v)) = scope.iter().rev().find(|(n, _)| n == name) {
                return Ok(v.clone());
            }
        }
        Err(format!("undefined variable: {name}"))
    }

    fn set_var(&mut self, name: &str, value: Value, declare: bool) {
        if !declare {
            for scope in self.vars.iter_mut().rev() {
                if let Some(slot) = scope.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value;
                    return;
                }
            }
        }
        if let Some(scope) = self.vars.last_mut() {
            scope.push((name.to_string(), value));
        }
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If(p, then, els) => {
                    self.vars.push(Vec::new());
                    let v = self.pipe(p, dot)?;
                    let r = if v.truthy() {
                        self.nodes(then, dot)
                    } else {
                        self.nodes(els, dot)
                    };
                    self.vars.pop();
                    r?;
                }
                Node::With(p, body, els) => {
                    self.vars.push(Vec::new());
                    let v = self.pipe(p, dot)?;
                    let r = if v.truthy() {
                        self.nodes(body, &v)
                    } else {
                        self.nodes(els, dot)
                    };
                    self.vars.pop();
                    r?;
                }
                Node::Range(p, body, els) => {
                    self.vars.push(Vec::new());
                    // The declared variables take key/index and element, not the whole value.
                    let decl = p.decl.clone();
                    let bare = Pipe {
                        decl: Vec::new(),
                        assign: false,
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipe(&bare, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| (Value::Int(i as i64), e))
                            .collect(),
                        Value::Map(m) => m.into_iter().map(|(k, e)| (Value::Str(k), e)).collect(),
                        Value::Int(n) => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            self.vars.pop();
                            return Err(format!("range can't iterate over {}", other.print()));
                        }
                    };
                    let r = if items.is_empty() {
                        self.nodes(els, dot)
                    } else {
                        let mut r = Ok(());
                        for (k, e) in items {
                            match decl.len() {
                                1 => self.set_var(&decl[0], e.clone(), true),
                                2 => {
                                    self.set_var(&decl[0], k, true);
                                    self.set_var(&decl[1], e.clone(), true);
                                }
                                _ => {}
                            }
                            r = self.nodes(body, &e);
                            if r.is_err() {
                                break;
                            }
                        }
                        r
                    };
                    self.vars.pop();
                    r?;
                }
            }
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &p.decl {
            self.set_var(name, v.clone(), !p.assign);
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value, String> {
        if let Arg::Func(name) = &cmd[0] {
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return call(name, &args, self.env).map_err(|e| format!("error calling {name}: {e}"));
        }
        if cmd.len() > 1 || piped.is_some() {
            return Err(format!(
                "can't give argument to non-function {}",
                describe(&cmd[0])
            ));
        }
        self.arg(&cmd[0], dot)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, String> {
        match a {
            Arg::Field(f) => fields(dot.clone(), f),
            Arg::Var(name, f) => fields(self.var(name)?, f),
            Arg::Func(name) => {
                call(name, &[], self.env).map_err(|e| format!("error calling {name}: {e}"))
            }
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(i) => Ok(Value::Int(*i)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Err("nil is not a command".into()),
            Arg::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                fields(v, f)
            }
        }
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(f) => format!(".{}", f.join(".")),
        Arg::Var(v, f) if f.is_empty() => v.clone(),
        Arg::Var(v, f) => format!("{v}.{}", f.join(".")),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(i) => i.to_string(),
        Arg::Float(f) => gofmt::format_v(*f),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".into(),
        Arg::Func(f) => f.clone(),
        Arg::Sub(..) => "(...)".into(),
    }
}

fn fields(mut v: Value, names: &[String]) -> Result<Value, String> {
    for n in names {
        v = match v {
            // missingkey=zero: labels are map[string]string, whose zero value is "".
            Value::Map(m) => m.get(n).cloned().unwrap_or(Value::Str(String::new())),
            // Prometheus' query results are structs with these two fields.
            Value::Sample(l, _) if n == "Labels" => {
                Value::Map(l.into_iter().map(|(k, v)| (k, Value::Str(v))).collect())
            }
            Value::Sample(_, v) if n == "Value" => Value::Float(v),
            Value::Nil => return Err(format!("nil pointer evaluating .{n}")),
            other => return Err(format!("can't evaluate field {n} in type {}", other.kind())),
        };
    }
    Ok(v)
}

fn want_args(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args: got {} want {n}", args.len()));
    }
    Ok(())
}

fn as_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.kind())),
    }
}

/// `strconv.ParseFloat`, which also reads `Inf`, `+Inf`, `NaN` and friends.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Ok(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    s.parse::<f64>()
        .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
}

fn as_str(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.kind()
        )),
    }
}

fn cmp_basic(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Less)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn eq_basic(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        _ => cmp_basic(a, b).map(|o| o == std::cmp::Ordering::Equal),
    }
}

fn humanize_with(mut v: f64, big: &[&str], small: &[&str], base: f64) -> String {
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in big {
            if v.abs() < base {
                break;
            }
            prefix = p;
            v /= base;
        }
        return format!("{}{prefix}", gofmt::format_g(v, Some(4), false));
    }
    let mut prefix = "";
    for p in small {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4), false))
}

const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

fn call(name: &str, args: &[Value], env: &Env<'_>) -> Result<Value, String> {
    use std::cmp::Ordering;
    let g4 = |v: f64| gofmt::format_g(v, Some(4), false);
    Ok(match name {
        "and" => {
            for a in args {
                if !a.truthy() {
                    return Ok(a.clone());
                }
            }
            args.last().cloned().unwrap_or(Value::Nil)
        }
        "or" => {
            for a in args {
                if a.truthy() {
                    return Ok(a.clone());
                }
            }
            args.last().cloned().unwrap_or(Value::Nil)
        }
        "not" => {
            want_args(args, 1)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            want_args(args, 1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::Map(m) => m.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("len of type {}", other.kind())),
            } as i64)
        }
        "index" => {
            let mut v = args.first().cloned().ok_or("wrong number of args")?;
            for k in &args[1..] {
                v = match (&v, k) {
                    (Value::Map(m), Value::Str(s)) => {
                        m.get(s).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(*i as usize)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    _ => return Err(format!("can't index item of type {}", v.kind())),
                };
            }
            v
        }
        "print" => {
            // Sprint adds spaces between operands when neither is a string.
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
                    s.push(' ');
                }
                s.push_str(&a.print());
            }
            Value::Str(s)
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let fmt = as_str(args.first().ok_or("wrong number of args")?)?;
            Value::Str(sprintf(&fmt, &args[1..]))
        }
        "urlquery" => {
            let s: String = args.iter().map(Value::print).collect();
            let mut out = String::new();
            for b in s.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        out.push(b as char)
                    }
                    b' ' => out.push('+'),
                    _ => {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
            }
            Value::Str(out)
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for b in &args[1..] {
                if eq_basic(&args[0], b)? {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" => {
            want_args(args, 2)?;
            Value::Bool(!eq_basic(&args[0], &args[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(args, 2)?;
            let nan = matches!((&args[0], &args[1]), (Value::Float(a), Value::Float(b)) if a.is_nan() || b.is_nan());
            let o = cmp_basic(&args[0], &args[1])?;
            Value::Bool(
                !nan && match name {
                    "lt" => o == Ordering::Less,
                    "le" => o != Ordering::Greater,
                    "gt" => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                },
            )
        }
        "query" => {
            want_args(args, 1)?;
            let q = as_str(&args[0])?;
            let Some(f) = env.query else {
                return Err("query is not available here".into());
            };
            Value::List(
                f(&q)?
                    .into_iter()
                    .map(|(l, v)| Value::Sample(l, v))
                    .collect(),
            )
        }
        "first" => {
            want_args(args, 1)?;
            match &args[0] {
                Value::List(l) if !l.is_empty() => l[0].clone(),
                Value::List(_) => return Err("first() called on vector with no elements".into()),
                other => {
                    return Err(format!(
                        "wrong type for value; expected template.queryResult; got {}",
                        other.kind()
                    ))
                }
            }
        }
        "label" => {
            want_args(args, 2)?;
            let l = as_str(&args[0])?;
            match &args[1] {
                Value::Sample(m, _) => Value::Str(m.get(&l).cloned().unwrap_or_default()),
                other => {
                    return Err(format!(
                        "wrong type for value; expected *template.sample; got {}",
                        other.kind()
                    ))
                }
            }
        }
        "value" => {
            want_args(args, 1)?;
            match &args[0] {
                Value::Sample(_, v) => Value::Float(*v),
                other => {
                    return Err(format!(
                        "wrong type for value; expected *template.sample; got {}",
                        other.kind()
                    ))
                }
            }
        }
        "strvalue" => {
            want_args(args, 1)?;
            match &args[0] {
                Value::Sample(m, _) => Value::Str(m.get("__value__").cloned().unwrap_or_default()),
                other => {
                    return Err(format!(
                        "wrong type for value; expected *template.sample; got {}",
                        other.kind()
                    ))
                }
            }
        }
        "args" => Value::Map(
            args.iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a.clone()))
                .collect(),
        ),
        "reReplaceAll" => {
            want_args(args, 3)?;
            let re = regex::Regex::new(&as_str(&args[0])?).map_err(|e| e.to_string())?;
            // Go's $1 / ${1} expansion matches the regex crate's.
            Value::Str(
                re.replace_all(&as_str(&args[2])?, as_str(&args[1])?.as_str())
                    .into_owned(),
            )
        }
        "match" => {
            want_args(args, 2)?;
            let re = regex::Regex::new(&as_str(&args[0])?).map_err(|e| e.to_string())?;
            Value::Bool(re.is_match(&as_str(&args[1])?))
        }
        "safeHtml" => {
            want_args(args, 1)?;
            Value::Str(as_str(&args[0])?)
        }
        "title" => {
            want_args(args, 1)?;
            let s = as_str(&args[0])?;
            let mut out = String::with_capacity(s.len());
            let mut prev_letter = false;
            for c in s.chars() {
                let letter = c.is_alphanumeric() || c == '_' || c == '\'';
                if letter && !prev_letter {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_letter = letter;
            }
            Value::Str(out)
        }
        "toUpper" => {
            want_args(args, 1)?;
            Value::Str(as_str(&args[0])?.to_uppercase())
        }
        "toLower" => {
            want_args(args, 1)?;
            Value::Str(as_str(&args[0])?.to_lowercase())
        }
        "graphLink" | "tableLink" => {
            want_args(args, 1)?;
            let e = as_str(&args[0])?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            let q = call("urlquery", &[Value::Str(e)], env)?.print();
            Value::Str(format!("/graph?g0.expr={q}&g0.tab={tab}"))
        }
        "sortByLabel" => {
            want_args(args, 2)?;
            let l = as_str(&args[0])?;
            let Value::List(mut items) = args[1].clone() else {
                return Err("sortByLabel needs a query result".into());
            };
            items.sort_by(|a, b| {
                let key = |v: &Value| match v {
                    Value::Sample(m, _) => m.get(&l).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                key(a).cmp(&key(b))
            });
            Value::List(items)
        }
        "stripPort" => {
            want_args(args, 1)?;
            let s = as_str(&args[0])?;
            Value::Str(split_host_port(&s).map_or(s.clone(), |(h, _)| h))
        }
        "stripDomain" => {
            want_args(args, 1)?;
            let s = as_str(&args[0])?;
            let (host, port) = split_host_port(&s).unwrap_or((s.clone(), String::new()));
            if host.parse::<std::net::IpAddr>().is_ok() {
                Value::Str(s)
            } else {
                let short = host.split('.').next().unwrap_or("").to_string();
                if port.is_empty() {
                    Value::Str(short)
                } else {
                    Value::Str(format!("{short}:{port}"))
                }
            }
        }
        "humanize" => {
            want_args(args, 1)?;
            let v = as_float(&args[0])?;
            if v == 0.0 || !v.is_finite() {
                Value::Str(g4(v))
            } else {
                Value::Str(humanize_with(
                    v,
                    &["k", "M", "G", "T", "P", "E", "Z", "Y"],
                    &SMALL,
                    1000.0,
                ))
            }
        }
        "humanize1024" => {
            want_args(args, 1)?;
            let mut v = as_float(&args[0])?;
            if v.abs() <= 1.0 || !v.is_finite() {
                Value::Str(g4(v))
            } else {
                let mut prefix = "";
                for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
                    if v.abs() < 1024.0 {
                        break;
                    }
                    prefix = p;
                    v /= 1024.0;
                }
                Value::Str(format!("{}{prefix}", g4(v)))
            }
        }
        "humanizeDuration" => {
            want_args(args, 1)?;
            let v = as_float(&args[0])?;
            Value::Str(humanize_duration(v))
        }
        "humanizePercentage" => {
            want_args(args, 1)?;
            Value::Str(format!("{}%", g4(as_float(&args[0])? * 100.0)))
        }
        "humanizeTimestamp" => {
            want_args(args, 1)?;
            let v = as_float(&args[0])?;
            if !v.is_finite() {
                Value::Str(g4(v))
            } else {
                Value::Str(go_time_string(v))
            }
        }
        "toTime" => {
            want_args(args, 1)?;
            Value::Str(go_time_string(as_float(&args[0])?))
        }
        "pathPrefix" => {
            let after_scheme = env
                .external_url
                .split_once("://")
                .map_or(env.external_url, |(_, r)| r);
            Value::Str(
                after_scheme
                    .find('/')
                    .map_or(String::new(), |i| after_scheme[i..].to_string()),
            )
        }
        "externalURL" => Value::Str(env.external_url.to_string()),
        "parseDuration" => {
            want_args(args, 1)?;
            let ms = crate::duration::parse(&as_str(&args[0])?)?;
            Value::Float(ms as f64 / 1000.0)
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn humanize_duration(v: f64) -> String {
    let g4 = |v: f64| gofmt::format_g(v, Some(4), false);
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut v = v;
    let mut prefix = "";
    for p in SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Go's `time.Time.String()` for a Unix time in seconds, in UTC
/// (`2006-01-02 15:04:05.999999999 +0000 UTC`).
fn go_time_string(secs: f64) -> String {
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as i64;
    let days = (whole as i64).div_euclid(86_400);
    let rem = (whole as i64).rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `fmt.Sprintf` for the verbs alert templates use: `%v %s %d %f %e %g %q %x %t %%`, with
/// flags, width and precision.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = None;
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width = Some(width.unwrap_or(0) * 10 + d.to_digit(10).unwrap_or(0) as usize);
            chars.next();
        }
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p = p * 10 + d.to_digit(10).unwrap_or(0) as usize;
                chars.next();
            }
            prec = Some(p);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        let bad = || format!("%!{verb}({}={})", arg.kind(), arg.print());
        let num_sign = |s: String, v: f64| {
            if plus && !v.is_sign_negative() && !s.starts_with('+') {
                format!("+{s}")
            } else if space && !v.is_sign_negative() {
                format!(" {s}")
            } else {
                s
            }
        };
        let body = match (verb, arg) {
            ('v', Value::Float(f)) => num_sign(gofmt::format_g(*f, prec, false), *f),
            ('v', a) | ('s', a @ Value::Str(_)) => {
                let s = a.print();
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Int(i)) => num_sign(i.to_string(), *i as f64),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('q', Value::Str(s)) => format!("{s:?}"),
            ('f' | 'F', Value::Float(f)) => num_sign(gofmt::format_f(*f, prec.unwrap_or(6)), *f),
            ('e' | 'E', Value::Float(f)) => {
                num_sign(gofmt::format_e(*f, prec.unwrap_or(6), verb == 'E'), *f)
            }
            ('g' | 'G', Value::Float(f)) => num_sign(gofmt::format_g(*f, prec, verb == 'G'), *f),
            _ => bad(),
        };
        let w = width.unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if minus {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', w - len));
        } else if zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
            let (sign, digits) = match body.strip_prefix(['-', '+']) {
                Some(d) => (&body[..1], d),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', w - len));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', w - len));
            out.push_str(&body);
        }
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", a.kind(), a.print()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(labels: &[(&str, &str)], value: f64) -> Value {
        let l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Value::Map(BTreeMap::from([
            ("Labels".to_string(), Value::from(&l)),
            ("ExternalLabels".to_string(), Value::Map(BTreeMap::new())),
            ("ExternalURL".to_string(), Value::Str(String::new())),
            ("Value".to_string(), Value::Float(value)),
        ]))
    }

    fn render(src: &str, labels: &[(&str, &str)], value: f64) -> Result<String, String> {
        let t = Template::parse(&crate::rulefile::with_defs(src))?;
        t.render(
            &data(labels, value),
            &Env {
                query: None,
                external_url: "",
            },
        )
    }

    #[test]
    fn expands_what_alert_annotations_use() {
        let l = [("instance", "db-1:9100"), ("job", "etl")];
        let r = |s: &str, v: f64| render(s, &l, v).unwrap();
        assert_eq!(
            r("{{ $labels.job }} on {{ $labels.instance }}", 0.0),
            "etl on db-1:9100"
        );
        assert_eq!(r("{{ $labels.missing }}|", 0.0), "|");
        assert_eq!(r("{{ $value }}", 1234567.0), "1.234567e+06");
        assert_eq!(r("{{ $value | humanize }}", 1234567.0), "1.235M");
        assert_eq!(r("{{ humanize 0.00123 }}", 0.0), "1.23m");
        assert_eq!(r("{{ $value | humanizeDuration }}", 3725.0), "1h 2m 5s");
        assert_eq!(r("{{ $value | humanizeDuration }}", 0.25), "250ms");
        assert_eq!(r("{{ $value | humanizePercentage }}", 0.1234), "12.34%");
        assert_eq!(r("{{ $value | humanize1024 }}", 2048.0), "2ki");
        assert_eq!(r(r#"{{ printf "%.2f" $value }}"#, 2.0 / 3.0), "0.67");
        assert_eq!(r(r#"{{ printf "%s=%d" "x" 3 }}"#, 0.0), "x=3");
        assert_eq!(
            r("{{ if gt $value 10.0 }}high{{ else }}low{{ end }}", 11.0),
            "high"
        );
        assert_eq!(
            r(
                "{{ if gt $value 10.0 }}high{{ else if gt $value 5.0 }}mid{{ else }}low{{ end }}",
                6.0
            ),
            "mid"
        );
        assert_eq!(
            r(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
                0.0
            ),
            "instance=db-1:9100;job=etl;"
        );
        assert_eq!(
            r("{{ with $labels.job }}job {{ . }}{{ end }}", 0.0),
            "job etl"
        );
        assert_eq!(r("{{ $labels.instance | stripPort }}", 0.0), "db-1");
        assert_eq!(r("{{ toUpper $labels.job }}", 0.0), "ETL");
        assert_eq!(
            r(r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#, 0.0),
            "db-1"
        );
        assert_eq!(r("a  {{- \" b \" -}}  c", 0.0), "a b c");
        assert_eq!(r("{{/* note */}}x", 0.0), "x");
        assert_eq!(r("{{ $x := 3 }}{{ $x = 4 }}{{ $x }}", 0.0), "4");
        assert_eq!(r("{{ 1 | printf \"%03d\" }}", 0.0), "001");
    }

    #[test]
    fn refuses_what_go_refuses() {
        assert!(Template::parse("{{ nosuchfunc 1 }}")
            .unwrap_err()
            .contains("not defined"));
        assert!(Template::parse("{{ $undefined }}")
            .unwrap_err()
            .contains("undefined variable"));
        assert!(Template::parse("{{ if 1 }}x").unwrap_err().contains("EOF"));
        assert!(Template::parse("{{ .Labels")
            .unwrap_err()
            .contains("unclosed"));
        // int against float is a type error in Go, not false.
        assert!(render("{{ if gt $value 10 }}x{{ end }}", &[], 11.0).is_err());
    }
}
