//! A YAML document as a tree of nodes that remember where they stood in the file, so every
//! error, syntactic or semantic, can name `line:column` as promtool does. Scalars keep their
//! source text (saphyr's lazy parsing), because a rule's `expr: 1.0` or a label value `01` must
//! reach the rule as written, as Go's yaml.v3 hands it over.

use saphyr::{MarkedYaml, YamlData, YamlLoader};
use saphyr_parser::{Parser, ScalarStyle};
use std::fmt;

/// A place in a file: 1-based line and column (promtool prints both 1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One node of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `~`, `null` or nothing at all.
    Null,
    /// A scalar as written (quotes removed); `quoted` is false for plain scalars, whose text
    /// may also be a number or a boolean.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order (duplicates are refused by the parser).
    Map(Vec<(Node, Node)>),
}

/// A syntax or shape error at a place in the file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

pub(crate) fn err(pos: Pos, message: impl Into<String>) -> YamlError {
    YamlError {
        pos,
        message: message.into(),
    }
}

/// Parses the first document of `text`; an empty file is a null node.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.early_parse(false);
    if let Err(e) = parser.load(&mut loader, true) {
        return Err(scan_error(&e));
    }
    if let Some(e) = loader.error() {
        return Err(scan_error(e));
    }
    let docs = loader.into_documents();
    match docs.into_iter().next() {
        Some(doc) => convert(doc),
        None => Ok(Node {
            pos: Pos { line: 1, col: 1 },
            kind: Kind::Null,
        }),
    }
}

fn scan_error(e: &saphyr::ScanError) -> YamlError {
    let m = e.marker();
    err(
        Pos {
            line: m.line(),
            col: m.col() + 1,
        },
        format!("yaml: {}", e.info()),
    )
}

fn convert(y: MarkedYaml<'_>) -> Result<Node, YamlError> {
    let pos = Pos {
        line: y.span.start.line(),
        col: y.span.start.col() + 1,
    };
    let kind = match y.data {
        YamlData::Representation(text, style, tag) => {
            let quoted = !matches!(style, ScalarStyle::Plain);
            if let Some(tag) = tag {
                // Explicit tags are rare in rule files; `!!str` keeps the text, anything else
                // is taken at its word as a scalar.
                let _ = tag;
            }
            if !quoted && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                Kind::Null
            } else {
                Kind::Scalar {
                    text: text.into_owned(),
                    quoted,
                }
            }
        }
        YamlData::Value(v) => Kind::Scalar {
            text: format!("{v:?}"),
            quoted: false,
        },
        YamlData::Sequence(items) => {
            Kind::Seq(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        YamlData::Mapping(m) => {
            let mut out = Vec::with_capacity(m.len());
            let mut merged: Vec<(Node, Node)> = Vec::new();
            for (k, v) in m {
                let (k, v) = (convert(k)?, convert(v)?);
                // Merge keys (`<<: *defaults`), which Go's yaml.v3 applies: the merged
                // mappings' entries, unless the mapping sets the key itself (earlier merged
                // mappings win over later ones).
                if matches!(&k.kind, Kind::Scalar { text, quoted: false } if text == "<<") {
                    let sources = match v.kind {
                        Kind::Map(entries) => vec![entries],
                        Kind::Seq(items) => items
                            .into_iter()
                            .map(|i| match i.kind {
                                Kind::Map(entries) => Ok(entries),
                                _ => Err(err(
                                    i.pos,
                                    "yaml: map merge requires map or sequence of maps as the value",
                                )),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(err(
                                v.pos,
                                "yaml: map merge requires map or sequence of maps as the value",
                            ))
                        }
                    };
                    for entries in sources {
                        for (mk, mv) in entries {
                            if !merged.iter().any(|(x, _)| x.kind == mk.kind) {
                                merged.push((mk, mv));
                            }
                        }
                    }
                    continue;
                }
                out.push((k, v));
            }
            for (mk, mv) in merged {
                if !out.iter().any(|(x, _)| x.kind == mk.kind) {
                    out.push((mk, mv));
                }
            }
            Kind::Map(out)
        }
        YamlData::Tagged(_, inner) => return convert(*inner),
        YamlData::Alias(_) => return Err(err(pos, "yaml: aliases are not supported")),
        YamlData::BadValue => return Err(err(pos, "yaml: invalid value")),
    };
    Ok(Node { pos, kind })
}

impl Node {
    /// A short name of the node's type for error messages, as yaml.v3 names them.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "!!null",
            Kind::Scalar { .. } => "!!str",
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The scalar's text; null is the empty string (as Go decodes it into a string).
    pub fn as_str(&self, what: &str) -> Result<String, YamlError> {
        match &self.kind {
            Kind::Null => Ok(String::new()),
            Kind::Scalar { text, .. } => Ok(text.clone()),
            _ => Err(err(
                self.pos,
                format!(
                    "cannot unmarshal {} into {what} (a string)",
                    self.type_name()
                ),
            )),
        }
    }

    /// The entries of a mapping; null is an empty mapping.
    pub fn as_map(&self, what: &str) -> Result<&[(Node, Node)], YamlError> {
        match &self.kind {
            Kind::Null => Ok(&[]),
            Kind::Map(m) => Ok(m),
            _ => Err(err(
                self.pos,
                format!(
                    "cannot unmarshal {} into {what} (a mapping)",
                    self.type_name()
                ),
            )),
        }
    }

    /// The items of a sequence; null is an empty sequence.
    pub fn as_seq(&self, what: &str) -> Result<&[Node], YamlError> {
        match &self.kind {
            Kind::Null => Ok(&[]),
            Kind::Seq(s) => Ok(s),
            _ => Err(err(
                self.pos,
                format!("cannot unmarshal {} into {what} (a list)", self.type_name()),
            )),
        }
    }

    /// A mapping from string to string (labels, annotations).
    pub fn as_string_map(&self, what: &str) -> Result<Vec<(Node, String)>, YamlError> {
        let mut out = Vec::new();
        for (k, v) in self.as_map(what)? {
            let value = v.as_str(&format!("the value of {what} {:?}", k.as_str("a key")?))?;
            out.push((k.clone(), value));
        }
        Ok(out)
    }
}

/// Walks a mapping with a known set of keys, refusing any other key as yaml.v3's
/// `KnownFields(true)` does.
pub(crate) struct Fields<'a> {
    entries: &'a [(Node, Node)],
}

impl<'a> Fields<'a> {
    /// `allowed` lists the keys the mapping may have; the first unknown key is an error.
    pub fn new(node: &'a Node, what: &str, allowed: &[&str]) -> Result<Self, YamlError> {
        let entries = node.as_map(what)?;
        for (k, _) in entries {
            let name = k.as_str("a key")?;
            if !allowed.contains(&name.as_str()) {
                return Err(err(
                    k.pos,
                    format!(
                        "field {name} not found in {what} (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(Self { entries })
    }

    /// The key node and value node of `name`, when present.
    pub fn get(&self, name: &str) -> Option<(&'a Node, &'a Node)> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { text, .. } if text == name))
            .map(|(k, v)| (k, v))
    }

    pub fn value(&self, name: &str) -> Option<&'a Node> {
        self.get(name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_scalars_keep_their_text() {
        let n = parse("groups:\n  - name: a\n    expr: 1.0\n").unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        let Kind::Seq(items) = &m[0].1.kind else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 2, col: 5 });
        let Kind::Map(g) = &items[0].kind else {
            panic!()
        };
        assert_eq!(g[1].1.as_str("x").unwrap(), "1.0");
        assert_eq!(g[1].1.pos, Pos { line: 3, col: 11 });
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_name_the_place() {
        let e = parse("a: [1, 2\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e}");
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_set() {
        let n = parse("a: &d {x: 1, y: 2}\nb:\n  <<: *d\n  y: 3\n").unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        let Kind::Map(b) = &m[1].1.kind else { panic!() };
        let got: Vec<(String, String)> = b
            .iter()
            .map(|(k, v)| (k.as_str("k").unwrap(), v.as_str("v").unwrap()))
            .collect();
        assert_eq!(got, [("y".into(), "3".into()), ("x".into(), "1".into())]);
    }
}
