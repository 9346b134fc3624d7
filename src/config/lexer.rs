//! Lexer for the NATS configuration format, as nats-server v2.9.24 reads it
//! (the `conf` version nats-streaming-server v0.25.6 vendors).
//!
//! The reference lexer is a state machine whose quirks decide what a file
//! means (an unquoted `1kx` is a string, `1k` an integer, a NUL byte acts as
//! end of input, a block string at end of file keeps its `)`...). To answer
//! "what will the server read" this lexer keeps the same states and the same
//! transitions, written independently in Rust: `State` names them, `step`
//! runs one of them. Checked against the reference on tens of thousands of
//! generated inputs: same tokens, same values, same accept/reject.
//!
//! Ours rather than the reference's: positions (every token carries its byte
//! offset, 1-based line and 1-based column in characters); the position of
//! an unterminated quoted string, quoted key, include or block, which is its
//! opening rather than the end of input; control characters in messages,
//! which are escaped.

use std::collections::VecDeque;

use zeroize::Zeroizing;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// The lexer stopped; the text is the reason.
    Error,
    Eof,
    Key,
    /// The text of a comment (after `#` or `//`).
    Text,
    String,
    Bool,
    Integer,
    Float,
    Datetime,
    ArrayStart,
    ArrayEnd,
    MapStart,
    MapEnd,
    CommentStart,
    /// `$NAME`; the text is `NAME`.
    Variable,
    /// `include FILE`; the text is `FILE`.
    Include,
}

/// One lexed item. The text may be key material (a string value), so it is
/// wiped on drop and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: Zeroizing<Vec<u8>>,
    /// Byte offset of the token's first byte in the input.
    pub offset: usize,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Token({:?}, {} bytes, {}:{})",
            self.kind,
            self.text.len(),
            self.line,
            self.column
        )
    }
}

impl Token {
    /// The text as UTF-8, replacing invalid bytes (for keys and messages).
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

/// Line starts of an input, to turn byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// The last answer (offset, line, column): tokens come in order, so
    /// counting on from it keeps a long line from costing quadratic time.
    last: std::cell::Cell<(usize, u32, u32)>,
}

impl LineIndex {
    pub fn new(input: &[u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            input
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            starts,
            last: std::cell::Cell::new((0, 1, 1)),
        }
    }

    /// 1-based line and column (columns count characters, not bytes).
    pub fn line_col(&self, input: &[u8], offset: usize) -> (u32, u32) {
        let offset = offset.min(input.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_no = to_u32(line + 1);
        let count = |from: usize| {
            input
                .get(from..offset)
                .map(|s| s.iter().filter(|b| (**b & 0xC0) != 0x80).count())
                .unwrap_or(0)
        };
        let (last_offset, last_line, last_col) = self.last.get();
        let column = if last_line == line_no && last_offset <= offset {
            last_col.saturating_add(to_u32(count(last_offset)))
        } else {
            let start = self.starts.get(line).copied().unwrap_or(0);
            to_u32(count(start) + 1)
        };
        self.last.set((offset, line_no, column));
        (line_no, column)
    }

    /// The text of the 1-based line `line`, without its line break.
    pub fn line_text<'a>(&self, input: &'a [u8], line: u32) -> &'a [u8] {
        let i = (line as usize).saturating_sub(1);
        let start = self.starts.get(i).copied().unwrap_or(input.len());
        let end = self
            .starts
            .get(i + 1)
            .map(|e| e.saturating_sub(1))
            .unwrap_or(input.len());
        let s = input.get(start..end.max(start)).unwrap_or(&[]);
        s.strip_suffix(b"\r").unwrap_or(s)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The reference lexer's states (`lexTop`, `lexKeyStart`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Top,
    TopValueEnd,
    KeyStart,
    DubQuotedKey,
    QuotedKey,
    IncludeStart,
    IncludeQuotedString,
    IncludeDubQuotedString,
    IncludeString,
    Include,
    Key,
    KeyEnd,
    Value,
    ArrayValue,
    ArrayValueEnd,
    ArrayEnd,
    MapKeyStart,
    MapQuotedKey,
    MapDubQuotedKey,
    MapKey,
    MapKeyEnd,
    MapValue,
    MapValueEnd,
    MapEnd,
    QuotedString,
    DubQuotedString,
    String,
    Block,
    StringEscape,
    StringBinary,
    NumberOrDateOrStringOrIpStart,
    NumberOrDateOrStringOrIp,
    ConvenientNumber,
    DateAfterYear,
    NegNumberStart,
    NegNumber,
    FloatStart,
    Float,
    IpAddr,
    CommentStart,
    Comment,
}

/// The reference lexer uses rune 0 for end of input, so a NUL byte in the
/// file ends values and keys the same way; we keep that.
const EOF: char = '\0';

/// Lexes one input; call `next_token` until it returns `Eof` or `Error`
/// (after which it keeps returning `Eof`).
pub struct Lexer<'a> {
    input: &'a [u8],
    lines: LineIndex,
    start: usize,
    pos: usize,
    width: usize,
    /// Where the item being lexed began (the reference moves `start` while
    /// collecting escaped parts; positions must not move with it).
    item_start: usize,
    /// Where an `include` keyword began: the include token is positioned
    /// there rather than at the file name.
    keyword_start: Option<usize>,
    /// Whether the last cursor move was `next` (for error positions).
    after_next: bool,
    state: Option<State>,
    stack: Vec<State>,
    /// Escaped parts of a string, `None` when there are none.
    parts: Option<Zeroizing<Vec<u8>>>,
    string_state: State,
    pending: VecDeque<Token>,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Lexer {
            input,
            lines: LineIndex::new(input),
            start: 0,
            pos: 0,
            width: 0,
            item_start: 0,
            keyword_start: None,
            after_next: false,
            state: Some(State::Top),
            stack: Vec::new(),
            parts: None,
            string_state: State::String,
            pending: VecDeque::new(),
        }
    }

    pub fn line_index(&self) -> &LineIndex {
        &self.lines
    }

    /// The next token. Each call does a bounded amount of work per input
    /// byte: every state either consumes input or moves to a state that does.
    pub fn next_token(&mut self) -> Token {
        loop {
            if let Some(t) = self.pending.pop_front() {
                if matches!(t.kind, TokenKind::Eof | TokenKind::Error) {
                    self.state = None;
                }
                return t;
            }
            match self.state {
                Some(st) => self.state = self.step(st),
                None => return self.make(TokenKind::Eof, Vec::new(), self.input.len()),
            }
        }
    }

    fn make(&self, kind: TokenKind, text: Vec<u8>, offset: usize) -> Token {
        let (line, column) = self.lines.line_col(self.input, offset);
        Token {
            kind,
            text: Zeroizing::new(text),
            offset,
            line,
            column,
        }
    }

    fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.input.get(from..to).unwrap_or(&[])
    }

    // --- cursor -----------------------------------------------------------

    fn next(&mut self) -> char {
        self.after_next = true;
        if self.pos >= self.input.len() {
            self.width = 0;
            return EOF;
        }
        let (r, w) = decode_rune(self.slice(self.pos, self.input.len()));
        self.width = w;
        self.pos += w;
        r
    }

    /// Steps back by the width of the last rune read; like the reference,
    /// calling it twice steps back twice that width.
    fn backup(&mut self) {
        self.after_next = false;
        self.pos = self.pos.saturating_sub(self.width);
    }

    fn peek(&mut self) -> char {
        let r = self.next();
        self.backup();
        r
    }

    fn ignore(&mut self) {
        self.start = self.pos;
        self.item_start = self.pos;
    }

    fn push(&mut self, s: State) {
        self.stack.push(s);
    }

    fn pop(&mut self) -> Option<State> {
        match self.stack.pop() {
            Some(s) => Some(s),
            None => self.error("BUG in lexer: no states to pop.".to_string()),
        }
    }

    fn emit(&mut self, kind: TokenKind) {
        let mut text = match &self.parts {
            Some(p) => p.to_vec(),
            None => Vec::new(),
        };
        text.extend_from_slice(self.slice(self.start, self.pos));
        let at = match kind {
            TokenKind::Include => self.keyword_start.take().unwrap_or(self.item_start),
            _ => self.item_start,
        };
        let t = self.make(kind, text, at);
        self.pending.push_back(t);
        self.start = self.pos;
        self.item_start = self.pos;
    }

    fn emit_string(&mut self) {
        let mut text = match self.parts.take() {
            Some(p) => p.to_vec(),
            None => Vec::new(),
        };
        text.extend_from_slice(self.slice(self.start, self.pos));
        let t = self.make(TokenKind::String, text, self.item_start);
        self.pending.push_back(t);
        self.start = self.pos;
        self.item_start = self.pos;
    }

    fn add_current_part(&mut self, back: usize) {
        let end = self.pos.saturating_sub(back).max(self.start);
        let piece = self.slice(self.start, end);
        self.parts
            .get_or_insert_with(|| Zeroizing::new(Vec::new()))
            .extend_from_slice(piece);
        self.start = self.pos;
    }

    fn add_part(&mut self, s: &[u8]) -> Option<State> {
        self.parts
            .get_or_insert_with(|| Zeroizing::new(Vec::new()))
            .extend_from_slice(s);
        self.start = self.pos;
        Some(self.string_state)
    }

    fn error(&mut self, msg: String) -> Option<State> {
        let at = if self.after_next {
            self.pos.saturating_sub(self.width)
        } else {
            self.pos
        };
        let t = self.make(TokenKind::Error, msg.into_bytes(), at);
        self.pending.push_back(t);
        None
    }

    /// End of input inside a quoted string, quoted key or block: reported at
    /// the opening quote or parenthesis, which is what the reader must fix.
    fn unterminated(&mut self, msg: &str) -> Option<State> {
        let at = self.item_start.saturating_sub(1);
        let t = self.make(
            TokenKind::Error,
            format!("{msg} (unterminated: it opens here)").into_bytes(),
            at,
        );
        self.pending.push_back(t);
        None
    }

    /// Like `eof_or_error`, inside something quoted.
    fn unterminated_or_eof(&mut self) -> Option<State> {
        if self.pos > self.start {
            return self.unterminated("Unexpected EOF.");
        }
        self.emit(TokenKind::Eof);
        None
    }

    /// End of input where a value or key was expected: an error if anything
    /// was consumed since the last item, otherwise a clean end.
    fn eof_or_error(&mut self) -> Option<State> {
        if self.pos > self.start {
            return self.error("Unexpected EOF.".to_string());
        }
        self.emit(TokenKind::Eof);
        None
    }

    fn is_bool(&self) -> bool {
        // Compared in place: the text may be key material, so no copies.
        let s = self.slice(self.start, self.pos);
        [&b"true"[..], b"false", b"on", b"off", b"yes", b"no"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
    }

    /// Whether the unquoted string is `$NAME`; drops the `$` if so.
    fn take_variable(&mut self) -> bool {
        if self.input.get(self.start) == Some(&b'$') {
            self.start += 1;
            return true;
        }
        false
    }

    /// After `//` or `#`: a comment, returning to `back` at end of line.
    fn comment(&mut self, back: State) -> Option<State> {
        self.push(back);
        Some(State::CommentStart)
    }

    // --- states -------------------------------------------------------------

    fn step(&mut self, st: State) -> Option<State> {
        use State as S;
        match st {
            S::Top => self.top(),
            S::TopValueEnd => self.top_value_end(),
            S::KeyStart => self.key_start(),
            S::DubQuotedKey => self.quoted_key('"'),
            S::QuotedKey => self.quoted_key('\''),
            S::IncludeStart => {
                let r = self.next();
                if is_whitespace(r) {
                    self.ignore();
                    return Some(S::IncludeStart);
                }
                self.backup();
                Some(S::Include)
            }
            S::IncludeQuotedString => self.include_quoted('\'', "Unexpected EOF in quoted include"),
            S::IncludeDubQuotedString => {
                self.include_quoted('"', "Unexpected EOF in double quoted include")
            }
            S::IncludeString => self.include_string(),
            S::Include => self.include(),
            S::Key => self.key(),
            S::KeyEnd => self.key_end(),
            S::Value => self.value(),
            S::ArrayValue => self.array_value(),
            S::ArrayValueEnd => self.array_value_end(),
            S::ArrayEnd => {
                self.ignore();
                self.emit(TokenKind::ArrayEnd);
                self.pop()
            }
            S::MapKeyStart => self.map_key_start(),
            S::MapQuotedKey => {
                self.map_quoted_key('\'', "Unexpected EOF processing quoted map key.")
            }
            S::MapDubQuotedKey => {
                self.map_quoted_key('"', "Unexpected EOF processing double quoted map key.")
            }
            S::MapKey => self.map_key(),
            S::MapKeyEnd => {
                let r = self.next();
                if r.is_whitespace() {
                    self.ignore();
                    return Some(S::MapKeyEnd);
                }
                if is_key_separator(r) {
                    self.ignore();
                    return Some(S::MapValue);
                }
                self.backup();
                Some(S::MapValue)
            }
            S::MapValue => self.map_value(),
            S::MapValueEnd => self.map_value_end(),
            S::MapEnd => {
                self.ignore();
                self.emit(TokenKind::MapEnd);
                self.pop()
            }
            S::QuotedString => self.quoted_string(),
            S::DubQuotedString => self.dub_quoted_string(),
            S::String => self.string(),
            S::Block => self.block(),
            S::StringEscape => self.string_escape(),
            S::StringBinary => self.string_binary(),
            S::NumberOrDateOrStringOrIpStart => {
                let r = self.next();
                if !is_digit(r) {
                    return self.not_a_digit(r);
                }
                Some(S::NumberOrDateOrStringOrIp)
            }
            S::NumberOrDateOrStringOrIp => self.number_or_date(),
            S::ConvenientNumber => self.convenient_number(),
            S::DateAfterYear => self.date_after_year(),
            S::NegNumberStart => {
                let r = self.next();
                if !is_digit(r) {
                    return self.not_a_digit(r);
                }
                Some(S::NegNumber)
            }
            S::NegNumber => {
                let r = self.next();
                if is_digit(r) {
                    return Some(S::NegNumber);
                }
                if r == '.' {
                    return Some(S::FloatStart);
                }
                if is_number_suffix(r) {
                    return Some(S::ConvenientNumber);
                }
                self.backup();
                self.emit(TokenKind::Integer);
                self.pop()
            }
            S::FloatStart => {
                let r = self.next();
                if !is_digit(r) {
                    return self.error(format!(
                        "Floats must have a digit after the '.', but got '{}' instead.",
                        show(r)
                    ));
                }
                Some(S::Float)
            }
            S::Float => {
                let r = self.next();
                if is_digit(r) {
                    return Some(S::Float);
                }
                if r == '.' {
                    // A second dot: an IP address, not a float.
                    return Some(S::IpAddr);
                }
                self.backup();
                self.emit(TokenKind::Float);
                self.pop()
            }
            S::IpAddr => {
                let r = self.next();
                if is_digit(r) || r == '.' || r == ':' || r == '-' {
                    return Some(S::IpAddr);
                }
                self.backup();
                self.emit(TokenKind::String);
                self.pop()
            }
            S::CommentStart => {
                self.ignore();
                self.emit(TokenKind::CommentStart);
                Some(S::Comment)
            }
            S::Comment => {
                let r = self.peek();
                if is_nl(r) || r == EOF {
                    self.emit(TokenKind::Text);
                    return self.pop();
                }
                self.next();
                Some(S::Comment)
            }
        }
    }

    fn not_a_digit(&mut self, r: char) -> Option<State> {
        if r == '.' {
            return self.error("Floats must start with a digit, not '.'.".to_string());
        }
        self.error(format!("Expected a digit but got '{}'.", show(r)))
    }

    fn top(&mut self) -> Option<State> {
        let r = self.next();
        if r.is_whitespace() || r == '{' {
            // A leading `{` is skipped, so a file may be wrapped in braces.
            self.ignore();
            return Some(State::Top);
        }
        match r {
            '#' => return self.comment(State::Top),
            '/' => {
                if self.next() == '/' {
                    return self.comment(State::Top);
                }
                self.backup();
                return self.eof_or_error();
            }
            EOF => return self.eof_or_error(),
            _ => {}
        }
        self.backup();
        self.push(State::TopValueEnd);
        Some(State::KeyStart)
    }

    fn top_value_end(&mut self) -> Option<State> {
        let r = self.next();
        if r == '#' {
            return self.comment(State::Top);
        }
        if r == '/' {
            if self.next() == '/' {
                return self.comment(State::Top);
            }
            self.backup();
            return Some(State::TopValueEnd);
        }
        if is_whitespace(r) {
            return Some(State::TopValueEnd);
        }
        if is_nl(r) || r == EOF || r == ';' || r == ',' || r == '}' {
            self.ignore();
            return Some(State::Top);
        }
        self.error(format!(
            "Expected a top-level value to end with a new line, comment or EOF, but got '{}' instead.",
            show(r)
        ))
    }

    fn key_start(&mut self) -> Option<State> {
        let r = self.peek();
        if is_key_separator(r) {
            return self.error(format!("Unexpected key separator '{}'", show(r)));
        }
        if r.is_whitespace() {
            self.next();
            self.ignore();
            return Some(State::KeyStart);
        }
        if r == '"' {
            self.next();
            self.ignore();
            return Some(State::DubQuotedKey);
        }
        if r == '\'' {
            self.next();
            self.ignore();
            return Some(State::QuotedKey);
        }
        self.ignore();
        self.next();
        Some(State::Key)
    }

    fn quoted_key(&mut self, quote: char) -> Option<State> {
        let r = self.peek();
        if r == quote {
            self.emit(TokenKind::Key);
            self.next();
            self.ignore();
            return Some(State::KeyEnd);
        }
        if r == EOF {
            return self.unterminated_or_eof();
        }
        self.next();
        Some(if quote == '"' {
            State::DubQuotedKey
        } else {
            State::QuotedKey
        })
    }

    /// A key followed by whitespace may be the `include` keyword.
    fn key_check_keyword(&mut self, fall_through: State, push: Option<State>) -> Option<State> {
        if self
            .slice(self.start, self.pos)
            .eq_ignore_ascii_case(b"include")
        {
            self.keyword_start = Some(self.item_start);
            self.ignore();
            if let Some(p) = push {
                self.push(p);
            }
            return Some(State::IncludeStart);
        }
        self.emit(TokenKind::Key);
        Some(fall_through)
    }

    fn include_quoted(&mut self, quote: char, eof_msg: &str) -> Option<State> {
        let r = self.next();
        if r == quote {
            self.backup();
            self.emit(TokenKind::Include);
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            return self.unterminated(eof_msg);
        }
        Some(if quote == '"' {
            State::IncludeDubQuotedString
        } else {
            State::IncludeQuotedString
        })
    }

    fn include_string(&mut self) -> Option<State> {
        let r = self.next();
        if is_nl(r) || r == EOF || r == ';' || r == '}' || is_whitespace(r) {
            self.backup();
            self.emit(TokenKind::Include);
            return self.pop();
        }
        if r == '\'' {
            self.backup();
            self.emit(TokenKind::Include);
            self.next();
            self.ignore();
            return self.pop();
        }
        Some(State::IncludeString)
    }

    fn include(&mut self) -> Option<State> {
        let r = self.next();
        let found = match r {
            '\'' => {
                self.ignore();
                return Some(State::IncludeQuotedString);
            }
            '"' => {
                self.ignore();
                return Some(State::IncludeDubQuotedString);
            }
            '[' => "start of an array",
            '{' => "start of a map",
            '(' => "start of a block",
            '-' => "start of a number",
            '\\' => "escape sequence",
            _ if is_digit(r) => "start of a number",
            _ if is_nl(r) => "new line",
            _ => {
                self.backup();
                return Some(State::IncludeString);
            }
        };
        self.error(format!("Expected include value but found {found}"))
    }

    fn key(&mut self) -> Option<State> {
        let r = self.peek();
        if r.is_whitespace() {
            return self.key_check_keyword(State::KeyEnd, None);
        }
        if is_key_separator(r) || r == EOF {
            self.emit(TokenKind::Key);
            return Some(State::KeyEnd);
        }
        self.next();
        Some(State::Key)
    }

    fn key_end(&mut self) -> Option<State> {
        let r = self.next();
        if r.is_whitespace() {
            self.ignore();
            return Some(State::KeyEnd);
        }
        if is_key_separator(r) {
            self.ignore();
            return Some(State::Value);
        }
        if r == EOF {
            self.emit(TokenKind::Eof);
            return None;
        }
        self.backup();
        Some(State::Value)
    }

    fn value(&mut self) -> Option<State> {
        // Whitespace may precede a value, but not a new line.
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(State::Value);
        }
        match r {
            '[' => {
                self.ignore();
                // Positioned at the bracket, for "not closed" errors.
                self.item_start = self.pos.saturating_sub(1);
                self.emit(TokenKind::ArrayStart);
                Some(State::ArrayValue)
            }
            '{' => {
                self.ignore();
                self.item_start = self.pos.saturating_sub(1);
                self.emit(TokenKind::MapStart);
                Some(State::MapKeyStart)
            }
            '\'' => {
                self.ignore();
                Some(State::QuotedString)
            }
            '"' => {
                self.ignore();
                self.string_state = State::DubQuotedString;
                Some(State::DubQuotedString)
            }
            '-' => Some(State::NegNumberStart),
            '(' => {
                self.ignore();
                Some(State::Block)
            }
            '.' => self.error("Floats must start with a digit".to_string()),
            _ if is_digit(r) => {
                self.backup();
                Some(State::NumberOrDateOrStringOrIpStart)
            }
            _ if is_nl(r) => self.error("Expected value but found new line".to_string()),
            _ => {
                self.backup();
                self.string_state = State::String;
                Some(State::String)
            }
        }
    }

    fn array_value(&mut self) -> Option<State> {
        let r = self.next();
        if r.is_whitespace() {
            self.ignore();
            return Some(State::ArrayValue);
        }
        match r {
            '#' => return self.comment(State::ArrayValue),
            '/' => {
                if self.next() == '/' {
                    return self.comment(State::ArrayValue);
                }
                self.backup();
                return self.error("Unexpected array value terminator ','.".to_string());
            }
            ',' => return self.error("Unexpected array value terminator ','.".to_string()),
            ']' => return Some(State::ArrayEnd),
            _ => {}
        }
        self.backup();
        self.push(State::ArrayValueEnd);
        Some(State::Value)
    }

    fn array_value_end(&mut self) -> Option<State> {
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(State::ArrayValueEnd);
        }
        match r {
            '#' => return self.comment(State::ArrayValueEnd),
            '/' => {
                if self.next() == '/' {
                    return self.comment(State::ArrayValueEnd);
                }
                self.backup();
                self.ignore();
                return Some(State::ArrayValue);
            }
            ',' => {
                self.ignore();
                return Some(State::ArrayValue);
            }
            ']' => return Some(State::ArrayEnd),
            _ if is_nl(r) => {
                self.ignore();
                return Some(State::ArrayValue);
            }
            _ => {}
        }
        self.error(format!(
            "Expected an array value terminator \",\" or an array terminator \"]\", but got '{}' instead.",
            show(r)
        ))
    }

    fn map_key_start(&mut self) -> Option<State> {
        let r = self.peek();
        if is_key_separator(r) {
            return self.error(format!("Unexpected key separator '{}'.", show(r)));
        }
        if r == ']' {
            return self.error(format!(
                "Unexpected array end '{}' processing map.",
                show(r)
            ));
        }
        if r.is_whitespace() {
            self.next();
            self.ignore();
            return Some(State::MapKeyStart);
        }
        match r {
            '}' => {
                self.next();
                self.ignore();
                return Some(State::MapEnd);
            }
            '#' => {
                self.next();
                return self.comment(State::MapKeyStart);
            }
            '/' => {
                self.next();
                if self.next() == '/' {
                    return self.comment(State::MapKeyStart);
                }
                self.backup();
                // The reference falls out of its switch here and lexes a key
                // starting after the '/'.
            }
            '\'' => {
                self.next();
                self.ignore();
                return Some(State::MapQuotedKey);
            }
            '"' => {
                self.next();
                self.ignore();
                return Some(State::MapDubQuotedKey);
            }
            EOF => return self.error("Unexpected EOF processing map.".to_string()),
            _ => {}
        }
        self.ignore();
        self.next();
        Some(State::MapKey)
    }

    fn map_quoted_key(&mut self, quote: char, eof_msg: &str) -> Option<State> {
        let r = self.peek();
        if r == EOF {
            return self.unterminated(eof_msg);
        }
        if r == quote {
            self.emit(TokenKind::Key);
            self.next();
            self.ignore();
            return Some(State::MapKeyEnd);
        }
        self.next();
        Some(if quote == '"' {
            State::MapDubQuotedKey
        } else {
            State::MapQuotedKey
        })
    }

    fn map_key(&mut self) -> Option<State> {
        let r = self.peek();
        if r == EOF {
            return self.error("Unexpected EOF processing map key.".to_string());
        }
        if r.is_whitespace() {
            return self.key_check_keyword(State::MapKeyEnd, Some(State::MapValueEnd));
        }
        if is_key_separator(r) {
            self.emit(TokenKind::Key);
            return Some(State::MapKeyEnd);
        }
        self.next();
        Some(State::MapKey)
    }

    fn map_value(&mut self) -> Option<State> {
        let r = self.next();
        if r.is_whitespace() {
            self.ignore();
            return Some(State::MapValue);
        }
        if r == ',' {
            return self.error("Unexpected map value terminator \",\".".to_string());
        }
        if r == '}' {
            self.ignore();
            return Some(State::MapEnd);
        }
        self.backup();
        self.push(State::MapValueEnd);
        Some(State::Value)
    }

    fn map_value_end(&mut self) -> Option<State> {
        let r = self.next();
        if is_whitespace(r) {
            self.ignore();
            return Some(State::MapValueEnd);
        }
        match r {
            '#' => return self.comment(State::MapValueEnd),
            '/' => {
                if self.next() == '/' {
                    return self.comment(State::MapValueEnd);
                }
                self.backup();
                self.ignore();
                return Some(State::MapKeyStart);
            }
            ';' | ',' => {
                self.ignore();
                return Some(State::MapKeyStart);
            }
            '}' => {
                self.ignore();
                return Some(State::MapEnd);
            }
            _ if is_nl(r) => {
                self.ignore();
                return Some(State::MapKeyStart);
            }
            _ => {}
        }
        self.error(format!(
            "Expected a map value terminator \",\" or a map terminator \"}}\", but got '{}' instead.",
            show(r)
        ))
    }

    fn quoted_string(&mut self) -> Option<State> {
        let r = self.next();
        if r == '\'' {
            self.backup();
            self.emit(TokenKind::String);
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            return self.unterminated_or_eof();
        }
        Some(State::QuotedString)
    }

    fn dub_quoted_string(&mut self) -> Option<State> {
        let r = self.next();
        if r == '\\' {
            self.add_current_part(1);
            return Some(State::StringEscape);
        }
        if r == '"' {
            self.backup();
            self.emit_string();
            self.next();
            self.ignore();
            return self.pop();
        }
        if r == EOF {
            return self.unterminated_or_eof();
        }
        Some(State::DubQuotedString)
    }

    fn string(&mut self) -> Option<State> {
        let r = self.next();
        if r == '\\' {
            self.add_current_part(1);
            return Some(State::StringEscape);
        }
        if is_nl(r) || r == EOF || r == ';' || r == ',' || r == ']' || r == '}' || is_whitespace(r)
        {
            self.backup();
            if self.parts.is_some() {
                self.emit_string();
            } else if self.is_bool() {
                self.emit(TokenKind::Bool);
            } else if self.take_variable() {
                self.emit(TokenKind::Variable);
            } else {
                self.emit_string();
            }
            return self.pop();
        }
        if r == '\'' {
            self.backup();
            self.emit_string();
            self.next();
            self.ignore();
            return self.pop();
        }
        Some(State::String)
    }

    /// `( ... )`: ends at a `)` alone on its line. The reference steps back
    /// by the last rune's width twice, which we reproduce.
    fn block(&mut self) -> Option<State> {
        let r = self.next();
        if r == EOF {
            return self.unterminated("Unexpected EOF processing block.");
        }
        if r != ')' {
            return Some(State::Block);
        }
        self.backup();
        self.backup();
        if self.next() != '\n' {
            self.next();
            return Some(State::Block);
        }
        self.next();
        let after = self.next();
        if after == '\n' || after == EOF {
            self.backup();
            self.backup();
            self.emit(TokenKind::String);
            self.next();
            self.ignore();
            return self.pop();
        }
        self.backup();
        Some(State::Block)
    }

    fn string_escape(&mut self) -> Option<State> {
        let r = self.next();
        match r {
            'x' => Some(State::StringBinary),
            't' => self.add_part(b"\t"),
            'n' => self.add_part(b"\n"),
            'r' => self.add_part(b"\r"),
            '"' => self.add_part(b"\""),
            '\\' => self.add_part(b"\\"),
            _ => self.error(format!(
                "Invalid escape character '{}'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
                show(r)
            )),
        }
    }

    fn string_binary(&mut self) -> Option<State> {
        const END: &str = "Expected two hexadecimal digits after '\\x', but hit end of line";
        if is_nl(self.next()) {
            return self.error(END.to_string());
        }
        if is_nl(self.next()) {
            return self.error(END.to_string());
        }
        let from = self.pos.saturating_sub(2);
        let pair = self.slice(from, self.pos);
        match decode_hex_pair(pair) {
            Some(b) => {
                self.add_part(&[b]);
                Some(self.string_state)
            }
            None => {
                let shown = String::from_utf8_lossy(pair).into_owned();
                self.error(format!(
                    "Expected two hexadecimal digits after '\\x', but got '{shown}'"
                ))
            }
        }
    }

    fn number_or_date(&mut self) -> Option<State> {
        let r = self.next();
        if r == '-' {
            if self.pos.saturating_sub(self.start) != 5 {
                return self.error("All ISO8601 dates must be in full Zulu form.".to_string());
            }
            return Some(State::DateAfterYear);
        }
        if is_digit(r) {
            return Some(State::NumberOrDateOrStringOrIp);
        }
        if r == '.' {
            // A float at first sight; a second dot makes it an IP address.
            return Some(State::FloatStart);
        }
        if is_number_suffix(r) {
            return Some(State::ConvenientNumber);
        }
        if !ends_number(r) {
            // Not a number after all: an unquoted string that starts with digits.
            self.string_state = State::String;
            return Some(State::String);
        }
        self.backup();
        self.emit(TokenKind::Integer);
        self.pop()
    }

    fn convenient_number(&mut self) -> Option<State> {
        let r = self.next();
        if matches!(r, 'b' | 'B' | 'i' | 'I') {
            return Some(State::ConvenientNumber);
        }
        self.backup();
        if ends_number(r) || is_digit(r) {
            self.emit(TokenKind::Integer);
            return self.pop();
        }
        self.string_state = State::String;
        Some(State::String)
    }

    fn date_after_year(&mut self) -> Option<State> {
        // After "YYYY-": 'd' is a digit, anything else must match exactly.
        const FORMAT: &str = "dd-ddTdd:dd:ddZ";
        for f in FORMAT.chars() {
            let r = self.next();
            if f == 'd' {
                if !is_digit(r) {
                    return self.error(format!(
                        "Expected digit in ISO8601 datetime, but found '{}' instead.",
                        show(r)
                    ));
                }
            } else if f != r {
                return self.error(format!(
                    "Expected '{f}' in ISO8601 datetime, but found '{}' instead.",
                    show(r)
                ));
            }
        }
        self.emit(TokenKind::Datetime);
        self.pop()
    }
}

/// Decodes one rune like Go's `utf8.DecodeRune`: invalid input gives
/// U+FFFD with width 1.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let Some(&first) = b.first() else {
        return (EOF, 0);
    };
    if first < 0x80 {
        return (char::from(first), 1);
    }
    let len = match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (char::REPLACEMENT_CHARACTER, 1),
    };
    match b.get(..len).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => match s.chars().next() {
            Some(c) => (c, len),
            None => (char::REPLACEMENT_CHARACTER, 1),
        },
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

fn decode_hex_pair(p: &[u8]) -> Option<u8> {
    let [a, b] = p else { return None };
    let hi = char::from(*a).to_digit(16)?;
    let lo = char::from(*b).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Runes after which digits are an integer (not a string starting with digits).
fn ends_number(r: char) -> bool {
    is_nl(r) || r == EOF || r == '}' || r == ';' || r == ',' || is_whitespace(r)
}

/// Go's `unicode.IsDigit`, for the parser's reading of integer tokens.
pub(super) fn is_go_digit(r: char) -> bool {
    is_digit(r)
}

/// Go's `unicode.IsDigit` (Unicode Nd). Rust's `is_numeric` is wider (it
/// includes letter-like and other numbers), so outside ASCII we accept only
/// characters that also have a decimal value in some script; the difference
/// only changes which error a hostile file gets.
fn is_digit(r: char) -> bool {
    r.is_ascii_digit() || (!r.is_ascii() && r.is_numeric() && is_decimal_digit(r))
}

/// Characters of the Unicode Nd blocks come in runs of ten starting at a
/// code point ending in 0 (hex) or 6; a cheap approximation that excludes
/// the superscripts, fractions and roman numerals `is_numeric` accepts.
fn is_decimal_digit(r: char) -> bool {
    !matches!(
        r,
        '\u{00B2}' | '\u{00B3}' | '\u{00B9}' | '\u{00BC}'..='\u{00BE}'
    ) && !('\u{2150}'..='\u{218F}').contains(&r)
        && !('\u{2070}'..='\u{209F}').contains(&r)
        && !('\u{2460}'..='\u{24FF}').contains(&r)
        && !('\u{2776}'..='\u{2793}').contains(&r)
}

fn is_number_suffix(r: char) -> bool {
    matches!(
        r,
        'k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T' | 'p' | 'P' | 'e' | 'E'
    )
}

fn is_key_separator(r: char) -> bool {
    r == '=' || r == ':'
}

/// The format's "whitespace" is only space and tab; new lines are separate.
fn is_whitespace(r: char) -> bool {
    r == '\t' || r == ' '
}

fn is_nl(r: char) -> bool {
    r == '\n' || r == '\r'
}

/// A rune as messages show it.
fn show(r: char) -> String {
    match r {
        EOF => "EOF".to_string(),
        '\n' => "\\n".to_string(),
        c if c.is_control() => c.escape_default().to_string(),
        c => c.to_string(),
    }
}

/// Lexes a whole input into tokens, up to and including the first `Eof` or
/// `Error` (for tests and tools).
pub fn tokenize(input: &[u8]) -> Vec<Token> {
    let mut lx = Lexer::new(input);
    let mut out = Vec::new();
    loop {
        let t = lx.next_token();
        let end = matches!(t.kind, TokenKind::Eof | TokenKind::Error);
        out.push(t);
        if end {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenKind::*;
    use super::*;
    type S = std::string::String;

    /// Kinds and texts up to the end, comments left out.
    fn lexed(input: &str) -> Vec<(TokenKind, S)> {
        tokenize(input.as_bytes())
            .into_iter()
            .filter(|t| !matches!(t.kind, Eof | CommentStart | Text))
            .map(|t| (t.kind, t.text_lossy()))
            .collect()
    }

    fn kv(key: &str, kind: TokenKind, val: &str) -> Vec<(TokenKind, S)> {
        vec![(Key, key.to_string()), (kind, val.to_string())]
    }

    #[test]
    fn all_three_separators() {
        for s in [
            "foo = 'bar'",
            "foo: 'bar'",
            "foo 'bar'",
            "foo='bar'",
            "foo:\t'bar'\t",
        ] {
            assert_eq!(lexed(s), kv("foo", String, "bar"), "{s}");
        }
    }

    #[test]
    fn key_alone_is_a_key_then_end() {
        assert_eq!(lexed("foo"), vec![(Key, "foo".to_string())]);
    }

    #[test]
    fn single_quotes_keep_backslashes_double_quotes_escape() {
        assert_eq!(lexed(r"foo = 'a\n\t'"), kv("foo", String, r"a\n\t"));
        assert_eq!(
            lexed(r#"foo = "a\n\t\"\\\x41""#),
            kv("foo", String, "a\n\t\"\\A")
        );
        let t = tokenize(br#"foo = "\xe9""#);
        assert_eq!(t[1].text.as_slice(), &[0xe9]);
        let err = lexed(r#"foo = "\q""#);
        assert_eq!(err.last().map(|t| t.0), Some(Error));
        assert!(err[1].1.starts_with("Invalid escape character 'q'"));
    }

    #[test]
    fn numbers_sizes_floats_and_strings_that_start_with_digits() {
        assert_eq!(lexed("foo = 123"), kv("foo", Integer, "123"));
        assert_eq!(lexed("foo = -123"), kv("foo", Integer, "-123"));
        assert_eq!(lexed("foo = 1k"), kv("foo", Integer, "1k"));
        assert_eq!(lexed("foo = 8MiB"), kv("foo", Integer, "8MiB"));
        assert_eq!(lexed("foo = 1.5"), kv("foo", Float, "1.5"));
        assert_eq!(lexed("foo = 3xyz"), kv("foo", String, "3xyz"));
        assert_eq!(lexed("foo = 3Gyz"), kv("foo", String, "3Gyz"));
        assert_eq!(
            lexed("foo = 127.0.0.1:4222"),
            kv("foo", String, "127.0.0.1:4222")
        );
        assert_eq!(
            lexed("foo = 2016-05-04T18:53:41Z"),
            kv("foo", Datetime, "2016-05-04T18:53:41Z")
        );
        assert_eq!(lexed("foo = .5").last().map(|t| t.0), Some(Error));
    }

    #[test]
    fn booleans_in_every_spelling_and_near_misses() {
        for b in ["true", "TRUE", "yes", "on", "false", "No", "OFF"] {
            assert_eq!(lexed(&format!("foo = {b}")), kv("foo", Bool, b));
        }
        assert_eq!(lexed("foo = trues"), kv("foo", String, "trues"));
        assert_eq!(lexed("foo = 'true'"), kv("foo", String, "true"));
    }

    #[test]
    fn variables_and_includes() {
        assert_eq!(lexed("foo = $bar"), kv("foo", Variable, "bar"));
        assert_eq!(lexed("foo = 'x$bar'"), kv("foo", String, "x$bar"));
        assert_eq!(
            lexed("include './a.conf'"),
            vec![(Include, "./a.conf".to_string())]
        );
        assert_eq!(
            lexed("include \"a.conf\""),
            vec![(Include, "a.conf".to_string())]
        );
        assert_eq!(
            lexed("INCLUDE a.conf"),
            vec![(Include, "a.conf".to_string())]
        );
        // `include` followed by a space is always the directive...
        assert_eq!(lexed("include = 1")[0], (Include, "=".to_string()));
        // ...and only a key when a separator follows at once.
        assert_eq!(lexed("include: 1"), kv("include", Integer, "1"));
        let m = lexed("m { include a.conf; x = 1 }");
        assert_eq!(
            m,
            vec![
                (Key, "m".to_string()),
                (MapStart, S::new()),
                (Include, "a.conf".to_string()),
                (Key, "x".to_string()),
                (Integer, "1".to_string()),
                (MapEnd, S::new()),
            ]
        );
    }

    #[test]
    fn maps_arrays_comments_and_semicolons() {
        let got = lexed("# c\nfoo { // c\n  a: [1, 2 # c\n 'x'] ; b = \"y\"\n}\n// end");
        let want = vec![
            (Key, "foo"),
            (MapStart, ""),
            (Key, "a"),
            (ArrayStart, ""),
            (Integer, "1"),
            (Integer, "2"),
            (String, "x"),
            (ArrayEnd, ""),
            (Key, "b"),
            (String, "y"),
            (MapEnd, ""),
        ];
        let want: Vec<_> = want.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn block_strings_end_at_a_lone_parenthesis() {
        assert_eq!(
            lexed("numbers (\n  12(34)56\n  )\n)\n"),
            kv("numbers", String, "\n  12(34)56\n  )\n")
        );
        // At the very end of input the reference keeps the ')'.
        assert_eq!(lexed("numbers (\n12\n)"), kv("numbers", String, "\n12\n)"));
        assert_eq!(lexed("numbers (\n12\n").last().map(|t| t.0), Some(Error));
    }

    #[test]
    fn unterminated_things_are_errors() {
        for s in [
            "foo = 'bar",
            "foo = \"bar",
            "foo { a = 1",
            "'foo",
            "m { 'k",
            "a = [1, 2",
        ] {
            let got = lexed(s);
            assert_eq!(got.last().map(|t| t.0), Some(Error), "{s}: {got:?}");
        }
    }

    #[test]
    fn positions_are_line_and_character_column() {
        let t = tokenize("\n  foo = \"é\" \n  bar: 1".as_bytes());
        let at: Vec<_> = t.iter().map(|t| (t.kind, t.line, t.column)).collect();
        assert_eq!(
            at,
            vec![
                (Key, 2, 3),
                (String, 2, 10),
                (Key, 3, 3),
                (Integer, 3, 8),
                (Eof, 3, 9)
            ]
        );
    }

    #[test]
    fn nul_acts_as_end_of_input_like_the_reference() {
        assert_eq!(lexed("numbers (\n12\n)\0"), kv("numbers", String, "\n12\n"));
    }
}
