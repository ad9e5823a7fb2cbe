//! Binary operators: arithmetic, comparisons (filtering, or 0/1 with `bool`), `atan2`, and the
//! set operators `and`/`or`/`unless`, between scalars and vectors, with one-to-one and
//! `group_left`/`group_right` matching `on` or `ignoring` labels, as Prometheus 2.42.

use crate::error::{QueryError, Result};
use crate::eval::{check_unique, Evaluator};
use crate::value::{Labels, Sample, Value, METRIC_NAME};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Mod,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Atan2,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "^" => Op::Pow,
            "%" => Op::Mod,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "atan2" => Op::Atan2,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn drops_metric_name(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Mod
        )
    }

    /// `vectorElemBinop`: the value and whether a comparison keeps the element.
    fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Pow => (l.powf(r), true),
            Op::Mod => (go_mod(l, r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::Atan2 => (l.atan2(r), true),
            Op::And | Op::Or | Op::Unless => (f64::NAN, false),
        }
    }
}

/// Go's math.Mod: the result has the sign of `x`; NaN for y = 0 or infinite x.
fn go_mod(x: f64, y: f64) -> f64 {
    if y == 0.0 || x.is_infinite() || x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    x % y
}

fn btos(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub(crate) fn binary(ev: &mut Evaluator, b: &BinaryExpr, t: i64) -> Result<Value> {
    let op_text = b.op.to_string().to_lowercase();
    let op = Op::parse(&op_text)
        .ok_or_else(|| QueryError::BadData(format!("operator {op_text} is not supported")))?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    if let Some(m) = &b.modifier {
        if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
            return Err(QueryError::BadData(
                "fill modifiers are not part of Prometheus 2.x PromQL and are not supported".into(),
            ));
        }
    }
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let v = if op.is_comparison() {
                btos(op.apply(l, r).1)
            } else {
                op.apply(l, r).0
            };
            Ok(Value::Scalar(v))
        }
        (Value::Vector(l), Value::Scalar(r)) => {
            vector_scalar(op, l, r, false, return_bool, t).map(Value::Vector)
        }
        (Value::Scalar(l), Value::Vector(r)) => {
            vector_scalar(op, r, l, true, return_bool, t).map(Value::Vector)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(VectorMatchCardinality::OneToOne);
            let out = match op {
                Op::And | Op::Or | Op::Unless => set_op(op, l, r, on, &names),
                _ => vector_binop(op, l, r, on, &names, &card, return_bool, t)?,
            };
            check_unique(&out)?;
            Ok(Value::Vector(out))
        }
        (l, r) => Err(QueryError::BadData(format!(
            "binary expression between {} and {} is not allowed",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    op: Op,
    vec: Vec<Sample>,
    scalar: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(vec.len());
    for s in vec {
        let (lv, rv) = if swap { (scalar, s.v) } else { (s.v, scalar) };
        let (mut value, mut keep) = op.apply(lv, rv);
        if op.is_comparison() && swap {
            value = rv;
        }
        if return_bool {
            value = btos(keep);
            keep = true;
        }
        if keep {
            let labels = if op.drops_metric_name() || return_bool {
                s.labels.without_name()
            } else {
                s.labels
            };
            out.push(Sample {
                labels,
                t,
                v: value,
            });
        }
    }
    check_unique(&out)?;
    Ok(out)
}

fn set_op(op: Op, l: Vec<Sample>, r: Vec<Sample>, on: bool, names: &[String]) -> Vec<Sample> {
    match op {
        Op::And => {
            if l.is_empty() || r.is_empty() {
                return Vec::new();
            }
            let right: HashSet<_> = r.iter().map(|s| s.labels.signature(on, names)).collect();
            l.into_iter()
                .filter(|s| right.contains(&s.labels.signature(on, names)))
                .collect()
        }
        Op::Or => {
            if l.is_empty() {
                return r;
            }
            if r.is_empty() {
                return l;
            }
            let left: HashSet<_> = l.iter().map(|s| s.labels.signature(on, names)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !left.contains(&s.labels.signature(on, names))),
            );
            out
        }
        _ => {
            if l.is_empty() || r.is_empty() {
                return l;
            }
            let right: HashSet<_> = r.iter().map(|s| s.labels.signature(on, names)).collect();
            l.into_iter()
                .filter(|s| !right.contains(&s.labels.signature(on, names)))
                .collect()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vector_binop(
    op: Op,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    on: bool,
    names: &[String],
    card: &VectorMatchCardinality,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Sample>> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let include: Vec<String> = match card {
        VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
            l.labels.clone()
        }
        _ => Vec::new(),
    };
    // The "one" side goes right.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<Vec<(String, String)>, &Sample> = HashMap::with_capacity(one.len());
    for rs in &one {
        let sig = rs.labels.signature(on, names);
        if let Some(dup) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let matched = if on {
                rs.labels.keep(names)
            } else {
                rs.labels.drop_names(names)
            };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {matched} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                rs.labels, dup.labels
            )));
        }
        right.insert(sig, rs);
    }
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashMap<Vec<(String, String)>, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in &many {
        let sig = ls.labels.signature(on, names);
        let Some(rs) = right.get(&sig) else { continue };
        let (vl, vr) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut value, keep) = op.apply(vl, vr);
        if return_bool {
            value = btos(keep);
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, on, names, one_to_one, &include);
        if return_bool {
            metric.remove(METRIC_NAME);
        }
        if one_to_one {
            if matched.contains_key(&sig) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            matched.insert(sig, HashSet::new());
        } else {
            let set = matched.entry(sig).or_default();
            if !set.insert(metric.clone()) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
        }
        out.push(Sample {
            labels: metric,
            t,
            v: value,
        });
    }
    Ok(out)
}

fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: Op,
    on: bool,
    names: &[String],
    one_to_one: bool,
    include: &[String],
) -> Labels {
    let mut l = lhs.clone();
    if op.drops_metric_name() {
        l.remove(METRIC_NAME);
    }
    if one_to_one {
        l = if on {
            l.keep(names)
        } else {
            l.drop_names(names)
        };
    }
    for name in include {
        l.set(name, rhs.get(name));
    }
    l
}
