//! The text form's parser: text → [`FunctionText`] (names unresolved, no
//! program needed), then [`FunctionText::resolve`] against the program's
//! names. Errors name the line and column and what was expected. Rendering
//! is in `mod.rs`; this file never renders.

use std::collections::BTreeMap;

use super::super::function::{Function, Node, Param, QualifiedName, Signature, is_identifier};
use super::super::function_ref::FunctionRef;
use super::super::ids::{FunctionId, NodeId};
use super::super::op::{Op, op_names};
use super::super::suggest::{closest_names, did_you_mean};
use super::super::types::{Type, Value};
use super::{OpSpec, ParseError, ResolveError};

/// A node line as written: its id, op and inputs, names unresolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeText {
    pub id: u32,
    pub op: OpSpec,
    pub inputs: Vec<u32>,
    pub line: usize,
    pub column: usize,
}

/// The node lines of a body, and its `next` line if it had one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyText {
    pub nodes: Vec<NodeText>,
    pub next: Option<u32>,
}

/// A function as written, names unresolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionText {
    pub doc: Option<String>,
    /// The id the header states (`fn #7 math::fib(...)`), if it states one.
    pub id: Option<FunctionId>,
    pub name: QualifiedName,
    pub signature: Signature,
    pub body: BodyText,
    /// Where the `fn` line is, for errors found while resolving.
    pub line: usize,
}

impl FunctionText {
    /// Resolves callee and parameter names and checks node ids: each id once,
    /// `next` above all of them.
    pub fn resolve(
        &self,
        resolve: &dyn Fn(&FunctionRef) -> Option<FunctionId>,
    ) -> Result<Function, ParseError> {
        let mut nodes = BTreeMap::new();
        for n in &self.body.nodes {
            let op = n
                .op
                .resolve(resolve, &self.signature)
                .map_err(|e| ParseError {
                    line: n.line,
                    column: n.column,
                    expected: match e {
                        ResolveError::UnknownFunction(_) => "a known function".to_string(),
                        ResolveError::UnknownParam(_) => "a parameter of this function".to_string(),
                    },
                    found: match e {
                        ResolveError::UnknownFunction(r) => format!("`{r}`"),
                        ResolveError::UnknownParam(p) => format!("`{p}`"),
                    },
                })?;
            let node = Node {
                op,
                inputs: n.inputs.iter().map(|&i| NodeId(i)).collect(),
            };
            if nodes.insert(NodeId(n.id), node).is_some() {
                return Err(ParseError {
                    line: n.line,
                    column: 1,
                    expected: "a node id not used earlier in this function".to_string(),
                    found: format!("a second `%{}`", n.id),
                });
            }
        }
        let dense = nodes.keys().next_back().map_or(0, |id: &NodeId| id.0 + 1);
        let next_node = match self.body.next {
            Some(next) if next < dense => {
                return Err(ParseError {
                    line: self.line,
                    column: 1,
                    expected: format!("`next %N` with N above every node id (at least %{dense})"),
                    found: format!("`next %{next}`"),
                });
            }
            Some(next) => next,
            None => dense,
        };
        Ok(Function {
            name: self.name.clone(),
            doc: self.doc.clone(),
            signature: self.signature.clone(),
            nodes,
            next_node,
        })
    }
}

/// Parses one function, with doc lines, header and body.
pub fn parse_function_text(text: &str) -> Result<FunctionText, ParseError> {
    let mut p = Parser::new(text);
    let f = p
        .function()?
        .ok_or_else(|| p.error_at_line_start("a function (`fn module::name(...) -> type {`)"))?;
    p.skip_blank_and_comments();
    if let Some(line) = p.peek_line() {
        let line_no = p.line_no;
        return Err(Cursor::new(line, line_no).error("end of text after the function's `}`"));
    }
    Ok(f)
}

/// Parses one function and resolves its names.
pub fn parse_function(
    text: &str,
    resolve: &dyn Fn(&FunctionRef) -> Option<FunctionId>,
) -> Result<Function, ParseError> {
    parse_function_text(text)?.resolve(resolve)
}

/// A program file as written: its functions in file order, and its
/// `next #N` line if it had one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramText {
    pub functions: Vec<FunctionText>,
    /// The function-id counter `next #N` states, and the line it is on.
    pub next: Option<(u64, usize)>,
}

/// Parses a program file: any number of functions, with blank and comment
/// lines between them, then optionally one `next #N` line (like a body's
/// `next %N`, it comes last).
pub fn parse_functions(text: &str) -> Result<ProgramText, ParseError> {
    let mut p = Parser::new(text);
    let mut out = ProgramText::default();
    loop {
        p.skip_blank_and_comments();
        let Some(line) = p.peek_line() else {
            return Ok(out);
        };
        let line_no = p.line_no;
        let mut c = Cursor::new(line, line_no);
        c.skip_ws();
        if out.next.is_some() {
            return Err(c.error("the end of the program after the `next #N` line"));
        }
        if c.word() == "next" {
            c.keyword("next", "`next #N`")?;
            c.skip_ws();
            c.expect_char('#', "a function id like `#7` after `next`")?;
            let next = c.number("a function id after `#`")?;
            c.skip_ws();
            if !c.at_end() {
                return Err(c.error("end of line after `next #N`"));
            }
            out.next = Some((next, line_no));
            p.advance();
            continue;
        }
        match p.function()? {
            Some(f) => out.functions.push(f),
            None => return Ok(out),
        }
    }
}

/// Parses a body given on its own: node lines and an optional `next` line,
/// or a whole function whose header the caller then checks.
pub fn parse_body(text: &str) -> Result<(Option<FunctionText>, BodyText), ParseError> {
    let mut p = Parser::new(text);
    p.skip_blank_and_comments();
    let starts_with_header = p
        .peek_line()
        .map(|l| {
            let t = l.trim_start();
            t.starts_with("fn ") || t.starts_with("///")
        })
        .unwrap_or(false);
    if starts_with_header {
        let f = parse_function_text(text)?;
        let body = f.body.clone();
        return Ok((Some(f), body));
    }
    let body = p.body_lines(false)?;
    Ok((None, body))
}

/// Parses an op written on its own, without inputs: `add`, `const 5`,
/// `param n`, `call math::fib`.
pub fn parse_op(text: &str) -> Result<OpSpec, ParseError> {
    let mut c = Cursor::new(text, 1);
    let op = c.op()?;
    c.skip_ws();
    if !c.at_end() {
        return Err(c.error("end of op (inputs are given separately)"));
    }
    Ok(op)
}

/// Parses a type name: `i64`, `f64`, `bool` or `unit`.
pub fn parse_type(text: &str) -> Result<Type, ParseError> {
    let mut c = Cursor::new(text, 1);
    let ty = c.ty()?;
    if !c.at_end() {
        return Err(c.error("end of type"));
    }
    Ok(ty)
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// Index into `lines` of the next unread line.
    idx: usize,
    /// 1-based number of the next unread line.
    line_no: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        Parser {
            lines,
            idx: 0,
            line_no: 1,
        }
    }

    fn peek_line(&self) -> Option<&'a str> {
        self.lines.get(self.idx).copied()
    }

    fn advance(&mut self) {
        self.idx += 1;
        self.line_no += 1;
    }

    fn error_at_line_start(&self, expected: &str) -> ParseError {
        match self.peek_line() {
            Some(line) => Cursor::new(line, self.line_no).error(expected),
            None => ParseError {
                line: self.line_no,
                column: 1,
                expected: expected.to_string(),
                found: "end of text".to_string(),
            },
        }
    }

    fn skip_blank_and_comments(&mut self) {
        while let Some(line) = self.peek_line() {
            let t = line.trim();
            if t.is_empty() || is_comment(t) {
                self.advance();
            } else {
                break;
            }
        }
    }

    /// Parses the next function, or returns `None` at the end of the text.
    fn function(&mut self) -> Result<Option<FunctionText>, ParseError> {
        self.skip_blank_and_comments();
        if self.peek_line().is_none() {
            return Ok(None);
        }
        let mut doc_lines: Vec<&str> = Vec::new();
        while let Some(line) = self.peek_line() {
            let t = line.trim_start();
            let Some(rest) = t.strip_prefix("///") else {
                break;
            };
            let rest = rest.strip_suffix('\r').unwrap_or(rest);
            doc_lines.push(rest.strip_prefix(' ').unwrap_or(rest));
            self.advance();
        }
        let doc = (!doc_lines.is_empty()).then(|| doc_lines.join("\n"));
        let Some(line) = self.peek_line() else {
            return Err(self.error_at_line_start("`fn` after the doc comment"));
        };
        let header_line = self.line_no;
        let mut c = Cursor::new(line, header_line);
        c.skip_ws();
        c.keyword("fn", "`fn module::name(params) -> type {`")?;
        c.require_ws("a space after `fn`")?;
        let id = if c.eat('#') {
            let id = c.number("a function id after `#`")?;
            c.require_ws("a space after the function id")?;
            Some(FunctionId(id))
        } else {
            None
        };
        let name = c.qualified_name()?;
        c.skip_ws();
        c.expect_char('(', "`(` opening the parameter list")?;
        let mut params = Vec::new();
        c.skip_ws();
        if !c.eat(')') {
            loop {
                c.skip_ws();
                let name = c.ident("a parameter name")?;
                c.skip_ws();
                c.expect_char(':', "`:` after the parameter name")?;
                c.skip_ws();
                let ty = c.ty()?;
                params.push(Param {
                    name: name.to_string(),
                    ty,
                });
                c.skip_ws();
                if c.eat(')') {
                    break;
                }
                c.expect_char(',', "`,` or `)` in the parameter list")?;
            }
        }
        c.skip_ws();
        c.expect_str("->", "`->` and the return type")?;
        c.skip_ws();
        let returns = c.ty()?;
        c.skip_ws();
        c.expect_char('{', "`{` opening the body")?;
        c.skip_ws();
        if !c.at_end() {
            return Err(c.error("end of line after `{`"));
        }
        self.advance();
        let body = self.body_lines(true)?;
        Ok(Some(FunctionText {
            doc,
            id,
            name,
            signature: Signature { params, returns },
            body,
            line: header_line,
        }))
    }

    /// Parses node lines until `}` (when `braced`) or the end of the text.
    fn body_lines(&mut self, braced: bool) -> Result<BodyText, ParseError> {
        let mut body = BodyText::default();
        loop {
            let Some(line) = self.peek_line() else {
                if braced {
                    return Err(self.error_at_line_start("`}` closing the function body"));
                }
                return Ok(body);
            };
            let line_no = self.line_no;
            let t = line.trim();
            if t.is_empty() || is_comment(t) {
                self.advance();
                continue;
            }
            let mut c = Cursor::new(line, line_no);
            c.skip_ws();
            if braced && c.eat('}') {
                c.skip_ws();
                if !c.at_end() {
                    return Err(c.error("end of line after `}`"));
                }
                self.advance();
                return Ok(body);
            }
            if c.rest().starts_with("next") {
                c.keyword("next", "`next %N`")?;
                c.skip_ws();
                let next = c.node_ref()?;
                c.skip_ws();
                if !c.at_end() {
                    return Err(c.error("end of line after `next %N`"));
                }
                if body.next.replace(next).is_some() {
                    return Err(Cursor::new(line, line_no).error("only one `next` line"));
                }
                self.advance();
                continue;
            }
            if body.next.is_some() {
                return Err(c.error(if braced {
                    "`}` after the `next` line"
                } else {
                    "the end of the body after the `next` line"
                }));
            }
            let id = c.node_ref()?;
            c.skip_ws();
            c.expect_char('=', "`=` after the node id")?;
            c.skip_ws();
            let op_column = c.column();
            let op = c.op()?;
            let mut inputs = Vec::new();
            c.skip_ws();
            if !c.at_end() {
                loop {
                    c.skip_ws();
                    inputs.push(c.node_ref()?);
                    c.skip_ws();
                    if c.at_end() {
                        break;
                    }
                    c.expect_char(',', "`,` between inputs")?;
                }
            }
            body.nodes.push(NodeText {
                id,
                op,
                inputs,
                line: line_no,
                column: op_column,
            });
            self.advance();
        }
    }
}

fn is_comment(trimmed: &str) -> bool {
    trimmed.starts_with("//") && !trimmed.starts_with("///")
}

/// A position in one line.
struct Cursor<'a> {
    line: &'a str,
    line_no: usize,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str, line_no: usize) -> Cursor<'a> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        Cursor {
            line,
            line_no,
            pos: 0,
        }
    }

    fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// 1-based column of the cursor, in characters.
    fn column(&self) -> usize {
        self.line[..self.pos].chars().count() + 1
    }

    fn error(&self, expected: &str) -> ParseError {
        let rest = self.rest();
        let found = if rest.is_empty() {
            "end of line".to_string()
        } else {
            let token: String = match rest.chars().next() {
                Some(c) if c.is_alphanumeric() || c == '_' || c == '%' || c == '#' || c == '-' => {
                    rest.chars()
                        .take_while(|c| {
                            c.is_alphanumeric() || matches!(c, '_' | ':' | '%' | '#' | '.' | '-')
                        })
                        .take(40)
                        .collect()
                }
                Some(c) => c.to_string(),
                None => String::new(),
            };
            format!("`{token}`")
        };
        ParseError {
            line: self.line_no,
            column: self.column(),
            expected: expected.to_string(),
            found,
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    fn require_ws(&mut self, expected: &str) -> Result<(), ParseError> {
        if !self.rest().starts_with([' ', '\t']) {
            return Err(self.error(expected));
        }
        self.skip_ws();
        Ok(())
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect_char(&mut self, c: char, expected: &str) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn expect_str(&mut self, s: &str, expected: &str) -> Result<(), ParseError> {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// A word made of identifier characters.
    fn word(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn keyword(&mut self, kw: &str, expected: &str) -> Result<(), ParseError> {
        if self.word() == kw {
            self.pos += kw.len();
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<&'a str, ParseError> {
        let word = self.word();
        if is_identifier(word) {
            self.pos += word.len();
            Ok(word)
        } else {
            Err(self.error(expected))
        }
    }

    fn qualified_name(&mut self) -> Result<QualifiedName, ParseError> {
        let start = self.pos;
        let expected = "a qualified name like `module::name`";
        self.ident(expected)?;
        let mut n_segments = 1;
        while self.rest().starts_with("::") {
            self.pos += 2;
            self.ident(expected)?;
            n_segments += 1;
        }
        if n_segments < 2 {
            self.pos = start;
            return Err(self.error(expected));
        }
        Ok(QualifiedName::new(&self.line[start..self.pos]).expect("checked segments"))
    }

    fn ty(&mut self) -> Result<Type, ParseError> {
        match Type::from_name(self.word()) {
            Some(ty) => {
                self.pos += ty.name().len();
                Ok(ty)
            }
            None => Err(self.error("a type (`i64`, `f64`, `bool` or `unit`)")),
        }
    }

    fn number(&mut self, expected: &str) -> Result<u64, ParseError> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..end].parse::<u64>() {
            Ok(v) => {
                self.pos += end;
                Ok(v)
            }
            Err(_) => Err(self.error(expected)),
        }
    }

    /// `%N`.
    fn node_ref(&mut self) -> Result<u32, ParseError> {
        let expected = "a node id like `%3`";
        if !self.rest().starts_with('%') {
            return Err(self.error(expected));
        }
        let start = self.pos;
        self.pos += 1;
        let Ok(n) = self.number(expected) else {
            self.pos = start;
            return Err(self.error(expected));
        };
        u32::try_from(n).map_err(|_| {
            self.pos = start;
            self.error("a node id below 2^32")
        })
    }

    /// "Expected an op", naming every op and the closest ones to `word`.
    fn unknown_op(&self, word: &str) -> ParseError {
        let all: Vec<String> = op_names().map(|n| format!("`{n}`")).collect();
        let mut e = self.error(&format!("an op, one of {}", all.join(", ")));
        e.found
            .push_str(&did_you_mean(&closest_names(word, op_names())));
        e
    }

    fn op(&mut self) -> Result<OpSpec, ParseError> {
        let word = self.word();
        let spec = match word {
            "const" => {
                self.pos += word.len();
                self.require_ws("a literal after `const`")?;
                let rest = self.rest();
                let end = rest.find([' ', '\t', ',']).unwrap_or(rest.len());
                let literal = &rest[..end];
                match Value::parse_literal(literal) {
                    Some(v) => {
                        self.pos += end;
                        OpSpec::Op(Op::Const(v))
                    }
                    None => {
                        return Err(self.error(
                            "a literal: an integer, a float like `2.0`, `true`, `false` or `()`",
                        ));
                    }
                }
            }
            "param" => {
                self.pos += word.len();
                self.require_ws("a parameter index or name after `param`")?;
                if self.rest().starts_with(|c: char| c.is_ascii_digit()) {
                    let idx = self.number("a parameter index")?;
                    let idx = u32::try_from(idx)
                        .map_err(|_| self.error("a parameter index below 2^32"))?;
                    OpSpec::Op(Op::Param(idx))
                } else {
                    OpSpec::ParamNamed(self.ident("a parameter index or name")?.to_string())
                }
            }
            "call" => {
                self.pos += word.len();
                self.require_ws("a function after `call`")?;
                if self.eat('#') {
                    let id = self.number("a function id after `#`")?;
                    OpSpec::Call(FunctionRef::Id(FunctionId(id)))
                } else {
                    OpSpec::Call(FunctionRef::Name(self.qualified_name()?))
                }
            }
            _ => match Op::simple_named(word) {
                Some(op) => {
                    self.pos += word.len();
                    OpSpec::Op(op)
                }
                None => return Err(self.unknown_op(word)),
            },
        };
        // An op is followed by whitespace, the end, or nothing else.
        if !(self.at_end() || self.rest().starts_with([' ', '\t'])) {
            return Err(self.error("a space after the op"));
        }
        Ok(spec)
    }
}
