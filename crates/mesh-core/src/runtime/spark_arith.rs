//! Arithmetic as Spark computes it in ANSI mode (what Glue runs), for the local engine.
//!
//! DataFusion's own arithmetic differs from Spark's where it matters for money: integer and
//! decimal `+ - *` wrap or exceed their precision silently, `SUM` wraps, decimal division
//! truncates at scale `s1 + 4`, and `7 / 2` is integer division. An analyzer rule, run before
//! type coercion, replaces these operators by functions with Spark's result types and values:
//!
//! - decimal `+ - * /`: the result type of Spark's `DecimalPrecision` (precision capped at 38,
//!   the scale reduced to no less than 6 when it would not fit), computed exactly in 256 bits
//!   and rounded HALF_UP; a result beyond the type's precision is an error
//!   (`NUMERIC_VALUE_OUT_OF_RANGE`), never a wrapped or oversized value;
//! - integer operands of a decimal operation become `DECIMAL(3|5|10|20, 0)` by type, and an
//!   integer literal the decimal of its digits (`2` is `DECIMAL(1,0)`), as in Spark;
//! - integer `+ - *` is checked (`ARITHMETIC_OVERFLOW`), an integer literal that fits 32 bits is
//!   an `INT` (so `2147483647 + 1` fails as in Spark);
//! - `/` of integers or floating-point values is a `DOUBLE` division; a zero divisor is an error
//!   (`DIVIDE_BY_ZERO`), as is a decimal one;
//! - `SUM` of decimals and integers accumulates in 256 bits and fails when the sum does not fit
//!   its type (`DECIMAL(min(38, p + 10), s)`, `BIGINT`).
//!
//! Decimal literals are decimals (`datafusion.sql_parser.parse_float_as_decimal`), except those
//! with an exponent (`1e3`) or more than 38 digits, which Spark reads as `DOUBLE`.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Builder, Decimal256Array, Float64Array, Int64Array, Int64Builder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{i256, DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{exec_datafusion_err, DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, ColumnarValue, EmitTo, Expr, ExprSchemable,
    GroupsAccumulator, LogicalPlan, Operator, ReversedUDAF, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion::prelude::SessionContext;

const MAX_PRECISION: i32 = 38;
const MIN_ADJUSTED_SCALE: i32 = 6;

/// The decimal operators rewritten to Spark's semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecimalOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl DecimalOp {
    fn symbol(self) -> &'static str {
        match self {
            DecimalOp::Add => "+",
            DecimalOp::Sub => "-",
            DecimalOp::Mul => "*",
            DecimalOp::Div => "/",
        }
    }
}

/// Spark's `DecimalType.adjustPrecisionScale` (with `allowPrecisionLoss`, the default).
fn adjust(precision: i32, scale: i32) -> (u8, i8) {
    if precision <= MAX_PRECISION {
        return (precision as u8, scale as i8);
    }
    let int_digits = precision - scale;
    let min_scale = scale.min(MIN_ADJUSTED_SCALE);
    let scale = (MAX_PRECISION - int_digits).max(min_scale);
    (MAX_PRECISION as u8, scale as i8)
}

/// The result type Spark gives `DECIMAL(p1,s1) op DECIMAL(p2,s2)`.
pub fn decimal_result_type(op: DecimalOp, (p1, s1): (u8, i8), (p2, s2): (u8, i8)) -> (u8, i8) {
    let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
    match op {
        DecimalOp::Add | DecimalOp::Sub => {
            let scale = s1.max(s2);
            adjust((p1 - s1).max(p2 - s2) + scale + 1, scale)
        }
        DecimalOp::Mul => adjust(p1 + p2 + 1, s1 + s2),
        DecimalOp::Div => {
            let scale = MIN_ADJUSTED_SCALE.max(s1 + p2 + 1);
            adjust(p1 - s1 + s2 + scale, scale)
        }
    }
}

fn pow10(n: u32) -> Option<i256> {
    i256::from_i128(10).checked_pow(n)
}

/// `n / d` rounded HALF_UP (ties away from zero), as Java's `BigDecimal.ROUND_HALF_UP`.
fn div_half_up(n: i256, d: i256) -> Option<i256> {
    let q = n.checked_div(d)?;
    let r = n.checked_rem(d)?;
    let twice = r.checked_mul(i256::from_i128(2))?.checked_abs()?;
    if twice >= d.checked_abs()? {
        if n.is_negative() != d.is_negative() {
            q.checked_sub(i256::ONE)
        } else {
            q.checked_add(i256::ONE)
        }
    } else {
        Some(q)
    }
}

/// `v` at scale `from` brought to scale `to` (HALF_UP when digits are dropped).
fn rescale(v: i256, from: i32, to: i32) -> Option<i256> {
    if to >= from {
        v.checked_mul(pow10((to - from) as u32)?)
    } else {
        div_half_up(v, pow10((from - to) as u32)?)
    }
}

/// Why one decimal operation has no value.
#[derive(Debug, PartialEq, Eq)]
pub enum DecimalFault {
    DivideByZero,
    /// The exact result (or an intermediate beyond 76 digits) does not fit the result type.
    Overflow(Option<i256>),
}

/// `a op b` of unscaled values at scales `s1`, `s2`, as an unscaled value of `DECIMAL(p, s)`.
pub fn decimal_apply(op: DecimalOp, a: i128, s1: i8, b: i128, s2: i8, (p, s): (u8, i8)) -> Result<i128, DecimalFault> {
    let (a, b) = (i256::from_i128(a), i256::from_i128(b));
    let (s1, s2, s) = (s1 as i32, s2 as i32, s as i32);
    let exact = match op {
        DecimalOp::Add | DecimalOp::Sub => {
            let common = s1.max(s2);
            (|| {
                let a = rescale(a, s1, common)?;
                let b = rescale(b, s2, common)?;
                let r = if op == DecimalOp::Add {
                    a.checked_add(b)?
                } else {
                    a.checked_sub(b)?
                };
                rescale(r, common, s)
            })()
        }
        DecimalOp::Mul => a.checked_mul(b).and_then(|r| rescale(r, s1 + s2, s)),
        DecimalOp::Div => {
            if b == i256::ZERO {
                return Err(DecimalFault::DivideByZero);
            }
            // a / b at scale s: (a * 10^(s - s1 + s2)) / b.
            let e = s - s1 + s2;
            (|| {
                let (n, d) = if e >= 0 {
                    (a.checked_mul(pow10(e as u32)?)?, b)
                } else {
                    (a, b.checked_mul(pow10((-e) as u32)?)?)
                };
                div_half_up(n, d)
            })()
        }
    };
    let Some(r) = exact else {
        return Err(DecimalFault::Overflow(None));
    };
    let limit = pow10(p as u32).expect("10^38 fits 256 bits");
    if r.checked_abs().is_none_or(|m| m >= limit) {
        return Err(DecimalFault::Overflow(Some(r)));
    }
    Ok(r.to_i128().expect("fewer than 39 digits"))
}

/// An unscaled value as decimal text (`-12.340` for -12340 at scale 3).
pub fn format_unscaled(v: i256, scale: i8) -> String {
    let digits = v.checked_abs().map(|m| m.to_string()).unwrap_or_else(|| v.to_string());
    let sign = if v.is_negative() { "-" } else { "" };
    let scale = scale.max(0) as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn label_of(args: &[ColumnarValue]) -> String {
    match args.get(2) {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(s)))) => s.clone(),
        _ => "an arithmetic expression".into(),
    }
}

fn binary_schema_name(symbol: &str, args: &[Expr]) -> String {
    format!("{} {symbol} {}", args[0].schema_name(), args[1].schema_name())
}

/// `spark_decimal_*(a, b, label)`: Spark's decimal `+ - * /` (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
struct SparkDecimal {
    op: DecimalOp,
    name: String,
    signature: Signature,
}

impl SparkDecimal {
    fn new(op: DecimalOp) -> Self {
        let name = match op {
            DecimalOp::Add => "spark_decimal_add",
            DecimalOp::Sub => "spark_decimal_sub",
            DecimalOp::Mul => "spark_decimal_mul",
            DecimalOp::Div => "spark_decimal_div",
        };
        Self {
            op,
            name: name.into(),
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

fn decimal_parts(t: &DataType) -> Result<(u8, i8)> {
    match t {
        DataType::Decimal128(p, s) => Ok((*p, *s)),
        other => Err(exec_datafusion_err!("expected a DECIMAL operand, got {other}")),
    }
}

impl ScalarUDFImpl for SparkDecimal {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (p, s) = decimal_result_type(self.op, decimal_parts(&arg_types[0])?, decimal_parts(&arg_types[1])?);
        Ok(DataType::Decimal128(p, s))
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(binary_schema_name(self.op.symbol(), args))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (p, s) = decimal_parts(args.return_field.data_type())?;
        let label = label_of(&args.args);
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let (s1, s2) = (
            decimal_parts(arrays[0].data_type())?.1,
            decimal_parts(arrays[1].data_type())?.1,
        );
        // Fast path: no digit is dropped (the exact scale is the result's) and Arrow's checked
        // 128-bit kernel gives values within the precision. Otherwise the exact 256-bit path
        // below rounds, or names the overflow.
        let exact_scale = match self.op {
            DecimalOp::Add | DecimalOp::Sub => Some(s1.max(s2)),
            DecimalOp::Mul => Some(s1 + s2),
            DecimalOp::Div => None,
        };
        if exact_scale == Some(s) {
            use datafusion::arrow::compute::kernels::numeric::{add, mul, sub};
            let fast = match self.op {
                DecimalOp::Add => add(&arrays[0], &arrays[1]),
                DecimalOp::Sub => sub(&arrays[0], &arrays[1]),
                _ => mul(&arrays[0], &arrays[1]),
            };
            if let Ok(r) = fast {
                let r = r.as_primitive::<Decimal128Type>();
                if r.validate_decimal_precision(p).is_ok() {
                    let r = r.clone().with_precision_and_scale(p, s)?;
                    return Ok(ColumnarValue::Array(Arc::new(r)));
                }
            }
        }
        let (a, b) = (
            arrays[0].as_primitive::<Decimal128Type>(),
            arrays[1].as_primitive::<Decimal128Type>(),
        );
        let mut out = Decimal128Builder::with_capacity(a.len());
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
                continue;
            }
            match decimal_apply(self.op, a.value(i), s1, b.value(i), s2, (p, s)) {
                Ok(v) => out.append_value(v),
                Err(DecimalFault::DivideByZero) => {
                    return Err(DataFusionError::Execution(format!(
                        "[DIVIDE_BY_ZERO] division by zero in {label} (Spark in ANSI mode fails here too); use NULLIF(divisor, 0) to get NULL instead"
                    )))
                }
                Err(DecimalFault::Overflow(exact)) => {
                    let value = exact
                        .map(|v| format!(" ({})", format_unscaled(v, s)))
                        .unwrap_or_default();
                    return Err(DataFusionError::Execution(format!(
                        "[NUMERIC_VALUE_OUT_OF_RANGE] decimal overflow: the result of {label}{value} does not fit DECIMAL({p},{s}) (Spark in ANSI mode fails here too, it never wraps); cast the operands to a smaller precision or scale, or to DOUBLE"
                    )));
                }
            }
        }
        let array = out.finish().with_precision_and_scale(p, s)?;
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

/// `spark_int_*(a, b, label)`: integer `+ - *` that fails on overflow (both operands have the
/// same type).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedInt {
    op: Operator,
    name: String,
    signature: Signature,
}

impl CheckedInt {
    fn new(op: Operator) -> Self {
        let name = match op {
            Operator::Plus => "spark_int_add",
            Operator::Minus => "spark_int_sub",
            _ => "spark_int_mul",
        };
        Self {
            op,
            name: name.into(),
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CheckedInt {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(binary_schema_name(&self.op.to_string(), args))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::compute::kernels::numeric::{add, mul, sub};
        let label = label_of(&args.args);
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let result = match self.op {
            Operator::Plus => add(&arrays[0], &arrays[1]),
            Operator::Minus => sub(&arrays[0], &arrays[1]),
            _ => mul(&arrays[0], &arrays[1]),
        };
        let array = result.map_err(|e| {
            DataFusionError::Execution(format!(
                "[ARITHMETIC_OVERFLOW] integer overflow in {label} ({e}; Spark in ANSI mode fails here too, it never wraps); cast an operand to BIGINT or DECIMAL"
            ))
        })?;
        Ok(ColumnarValue::Array(array))
    }
}

/// `spark_divide(a, b, label)`: `DOUBLE` division that fails on a zero divisor.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SparkDivide {
    signature: Signature,
}

impl ScalarUDFImpl for SparkDivide {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        "spark_divide"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(binary_schema_name("/", args))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let label = label_of(&args.args);
        let arrays = ColumnarValue::values_to_arrays(&args.args[..2])?;
        let (a, b) = (
            arrays[0].as_primitive::<Float64Type>(),
            arrays[1].as_primitive::<Float64Type>(),
        );
        if b.iter().any(|v| v == Some(0.0)) {
            return Err(DataFusionError::Execution(format!(
                "[DIVIDE_BY_ZERO] division by zero in {label} (Spark in ANSI mode fails here too); use NULLIF(divisor, 0) to get NULL instead"
            )));
        }
        let out: Float64Array = a.iter().zip(b.iter()).map(|(x, y)| Some(x? / y?)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Int(DataType),
    Decimal(u8, i8),
    Float,
    Other,
}

fn kind(t: &DataType) -> Kind {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int(t.clone()),
        DataType::Decimal128(p, s) if *s >= 0 => Kind::Decimal(*p, *s),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
        _ => Kind::Other,
    }
}

fn int_rank(t: &DataType) -> u8 {
    match t {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 => 3,
        _ => 4,
    }
}

/// An integer literal's value, if `e` is one.
fn int_literal(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int8(Some(x)) => Some(*x as i64),
            ScalarValue::Int16(Some(x)) => Some(*x as i64),
            ScalarValue::Int32(Some(x)) => Some(*x as i64),
            ScalarValue::Int64(Some(x)) => Some(*x),
            _ => None,
        },
        _ => None,
    }
}

/// The decimal an integer operand of a decimal operation becomes in Spark.
fn int_as_decimal(e: Expr, t: &DataType) -> Expr {
    let p = match int_literal(&e) {
        Some(v) => v.unsigned_abs().checked_ilog10().map(|d| d + 1).unwrap_or(1) as u8,
        None => match t {
            DataType::Int8 => 3,
            DataType::Int16 => 5,
            DataType::Int32 => 10,
            _ => 20,
        },
    };
    e.cast_to_type(DataType::Decimal128(p, 0))
}

trait CastTo {
    fn cast_to_type(self, t: DataType) -> Expr;
}

impl CastTo for Expr {
    fn cast_to_type(self, t: DataType) -> Expr {
        Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(self), t))
    }
}

/// The analyzer rule (see the module documentation). Runs before DataFusion's type coercion.
#[derive(Debug)]
pub struct SparkArithmetic {
    udfs: Udfs,
}

#[derive(Debug)]
struct Udfs {
    add: Arc<ScalarUDF>,
    sub: Arc<ScalarUDF>,
    mul: Arc<ScalarUDF>,
    div: Arc<ScalarUDF>,
    int_add: Arc<ScalarUDF>,
    int_sub: Arc<ScalarUDF>,
    int_mul: Arc<ScalarUDF>,
    divide: Arc<ScalarUDF>,
}

impl Default for SparkArithmetic {
    fn default() -> Self {
        let udf = |f: ScalarUDF| Arc::new(f);
        Self {
            udfs: Udfs {
                add: udf(ScalarUDF::new_from_impl(SparkDecimal::new(DecimalOp::Add))),
                sub: udf(ScalarUDF::new_from_impl(SparkDecimal::new(DecimalOp::Sub))),
                mul: udf(ScalarUDF::new_from_impl(SparkDecimal::new(DecimalOp::Mul))),
                div: udf(ScalarUDF::new_from_impl(SparkDecimal::new(DecimalOp::Div))),
                int_add: udf(ScalarUDF::new_from_impl(CheckedInt::new(Operator::Plus))),
                int_sub: udf(ScalarUDF::new_from_impl(CheckedInt::new(Operator::Minus))),
                int_mul: udf(ScalarUDF::new_from_impl(CheckedInt::new(Operator::Multiply))),
                divide: udf(ScalarUDF::new_from_impl(SparkDivide {
                    signature: Signature::any(3, Volatility::Immutable),
                })),
            },
        }
    }
}

fn call(udf: &Arc<ScalarUDF>, l: Expr, r: Expr, label: String) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        udf.clone(),
        vec![l, r, Expr::Literal(ScalarValue::Utf8(Some(label)), None)],
    ))
}

impl SparkArithmetic {
    fn rewrite_expr(&self, expr: Expr, schema: &DFSchema, columns: &Columns) -> Result<Transformed<Expr>> {
        // A SUM that feeds an output column names it in its overflow error.
        if let Expr::AggregateFunction(agg) = &expr {
            let checked = agg.func.inner().as_any().downcast_ref::<CheckedSum>().is_some();
            let name = expr.schema_name().to_string();
            if let (true, Some(column)) = (checked, columns.get(&name)) {
                let mut agg = agg.clone();
                agg.func = Arc::new(AggregateUDF::new_from_impl(CheckedSum {
                    inner: datafusion::functions_aggregate::sum::Sum::new(),
                    label: Some(format!("`{name}` (column `{column}`)")),
                }));
                return Ok(Transformed::yes(Expr::AggregateFunction(agg)));
            }
            return Ok(Transformed::no(expr));
        }
        // Literals first: decimals with an exponent or beyond 38 digits are DOUBLE in Spark.
        if let Expr::Literal(v, _) = &expr {
            let as_double = match v {
                ScalarValue::Decimal128(Some(_), _, s) if *s < 0 => true,
                ScalarValue::Decimal256(Some(_), _, _) => true,
                _ => false,
            };
            if as_double {
                let double = v.cast_to(&DataType::Float64)?;
                return Ok(Transformed::yes(Expr::Literal(double, None)));
            }
            return Ok(Transformed::no(expr));
        }
        // `-x` of an integer fails on overflow (`-(-2147483648)`), as `0 - x`.
        if let Expr::Negative(inner) = &expr {
            if let Ok(t @ (DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)) =
                inner.get_type(schema)
            {
                let zero = Expr::Literal(ScalarValue::Int8(Some(0)), None).cast_to_type(t);
                let text = format!("(- {})", inner.schema_name());
                let label = match columns.get(&expr.schema_name().to_string()) {
                    Some(column) => format!("`{text}` (column `{column}`)"),
                    None => format!("`{text}`"),
                };
                return Ok(Transformed::yes(call(
                    &self.udfs.int_sub,
                    zero,
                    inner.as_ref().clone(),
                    label,
                )));
            }
            return Ok(Transformed::no(expr));
        }
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        let op = *op;
        if !matches!(
            op,
            Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
        ) {
            return Ok(Transformed::no(expr));
        }
        let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
            return Ok(Transformed::no(expr));
        };
        // Spark types an integer literal that fits 32 bits as INT.
        let int_type = |e: &Expr, t: DataType| match (int_literal(e), &t) {
            (Some(v), DataType::Int64) if i32::try_from(v).is_ok() => DataType::Int32,
            _ => t,
        };
        // The operands' own types (casts are decided on them) and Spark's view of them.
        let (actual_l, actual_r) = (lt.clone(), rt.clone());
        let (lt, rt) = (int_type(left, lt), int_type(right, rt));
        let text = format!("{} {op} {}", left.schema_name(), right.schema_name());
        let label = match columns.get(&text) {
            Some(column) => format!("`{text}` (column `{column}`)"),
            None => format!("`{text}`"),
        };
        let (l, r) = (left.as_ref().clone(), right.as_ref().clone());
        let rewritten = match (kind(&lt), kind(&rt)) {
            (Kind::Decimal(..), Kind::Decimal(..) | Kind::Int(_)) | (Kind::Int(_), Kind::Decimal(..)) => {
                let operand = |e: Expr, t: &DataType| match kind(t) {
                    Kind::Int(_) => int_as_decimal(e, t),
                    _ => e,
                };
                let (l, r) = (operand(l, &lt), operand(r, &rt));
                let udf = match op {
                    Operator::Plus => &self.udfs.add,
                    Operator::Minus => &self.udfs.sub,
                    Operator::Multiply => &self.udfs.mul,
                    _ => &self.udfs.div,
                };
                call(udf, l, r, label)
            }
            (Kind::Int(a), Kind::Int(b)) if op != Operator::Divide => {
                let common = if int_rank(&a) >= int_rank(&b) { a } else { b };
                let cast = |e: Expr, t: &DataType| {
                    if *t == common {
                        e
                    } else {
                        e.cast_to_type(common.clone())
                    }
                };
                let (l, r) = (cast(l, &actual_l), cast(r, &actual_r));
                let udf = match op {
                    Operator::Plus => &self.udfs.int_add,
                    Operator::Minus => &self.udfs.int_sub,
                    _ => &self.udfs.int_mul,
                };
                call(udf, l, r, label)
            }
            (Kind::Int(_) | Kind::Float | Kind::Decimal(..), Kind::Int(_) | Kind::Float | Kind::Decimal(..))
                if op == Operator::Divide =>
            {
                call(
                    &self.udfs.divide,
                    l.cast_to_type(DataType::Float64),
                    r.cast_to_type(DataType::Float64),
                    label,
                )
            }
            _ => return Ok(Transformed::no(expr)),
        };
        Ok(Transformed::yes(rewritten))
    }

    fn rewrite_plan(&self, plan: LogicalPlan, columns: &Columns) -> Result<Transformed<LogicalPlan>> {
        let mut schema = merge_schema(&plan.inputs());
        if let LogicalPlan::TableScan(ts) = &plan {
            let source = DFSchema::try_from_qualified_schema(ts.table_name.clone(), &ts.source.schema())?;
            schema.merge(&source);
        }
        let preserver = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = preserver.save(&expr);
            expr.transform_up(|e| self.rewrite_expr(e, &schema, columns))
                .map(|t| t.update_data(|e| name.restore(e)))
        })?
        .map_data(|p| p.recompute_schema())
    }
}

/// The output column each sub-expression of the query's final projection feeds (by schema
/// name), so arithmetic errors can name the column.
type Columns = std::collections::HashMap<String, String>;

fn output_columns(plan: &LogicalPlan) -> Columns {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut node = plan;
    let mut columns = Columns::new();
    let mut root = true;
    // Down the chain of projections (a job's shaping projection sits on the query's own): each
    // field of a lower projection feeds the output column that the one above maps it to.
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                let mut next = Columns::new();
                for ((qualifier, field), e) in p.schema.iter().zip(&p.expr) {
                    let column = if root {
                        Some(field.name().clone())
                    } else {
                        // By name, or qualified (by this projection's relation, or by the alias
                        // of a subquery between the two).
                        let name = field.name();
                        let suffix = format!(".{name}");
                        columns
                            .get(name)
                            .or_else(|| qualifier.and_then(|q| columns.get(&format!("{q}.{name}"))))
                            .or_else(|| {
                                columns
                                    .iter()
                                    .find(|(k, _)| {
                                        k.ends_with(&suffix) && !k[..k.len() - suffix.len()].contains(['(', ' '])
                                    })
                                    .map(|(_, v)| v)
                            })
                            .cloned()
                    };
                    let Some(column) = column else { continue };
                    let _ = e.apply(|sub| {
                        next.entry(sub.schema_name().to_string())
                            .or_insert_with(|| column.clone());
                        Ok(TreeNodeRecursion::Continue)
                    });
                }
                for (k, v) in next {
                    columns.entry(k).or_insert(v);
                }
                root = false;
                node = p.input.as_ref();
            }
            LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Filter(_) => match node.inputs().into_iter().next() {
                Some(input) => node = input,
                None => return columns,
            },
            _ => return columns,
        }
    }
}

impl AnalyzerRule for SparkArithmetic {
    fn name(&self) -> &str {
        "mesh_spark_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let columns = output_columns(&plan);
        Ok(plan
            .transform_up_with_subqueries(|p| self.rewrite_plan(p, &columns))?
            .data)
    }
}

/// `SUM` that never wraps: decimal and integer inputs accumulate in 256 bits and the result
/// must fit Spark's type; other inputs (and `DISTINCT`, and window frames) use DataFusion's sum.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedSum {
    inner: datafusion::functions_aggregate::sum::Sum,
    /// What errors call this sum (`` `sum(x)` (column `revenue`) ``); the expression by default.
    label: Option<String>,
}

impl CheckedSum {
    fn what(&self, args: &AccumulatorArgs) -> String {
        self.label.clone().unwrap_or_else(|| format!("`{}`", args.name))
    }
}

/// What a checked sum accumulates: its result type and the scale of the input.
#[derive(Debug, Clone, Copy)]
enum SumOf {
    Decimal { precision: u8, scale: i8 },
    Long,
}

impl SumOf {
    fn of(args: &AccumulatorArgs) -> Option<SumOf> {
        if args.is_distinct {
            return None;
        }
        match args.return_field.data_type() {
            DataType::Decimal128(precision, scale) => Some(SumOf::Decimal {
                precision: *precision,
                scale: *scale,
            }),
            DataType::Int64 => Some(SumOf::Long),
            _ => None,
        }
    }

    fn state_type(self) -> DataType {
        match self {
            SumOf::Decimal { scale, .. } => DataType::Decimal256(76, scale),
            SumOf::Long => DataType::Decimal256(76, 0),
        }
    }

    fn add_values(self, values: &ArrayRef, mut each: impl FnMut(usize, i256) -> Result<()>) -> Result<()> {
        match self {
            SumOf::Decimal { .. } => {
                let a = values.as_primitive::<Decimal128Type>();
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        each(i, i256::from_i128(v))?;
                    }
                }
            }
            SumOf::Long => {
                let a = values.as_primitive::<Int64Type>();
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        each(i, i256::from_i128(v as i128))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn add_states(states: &ArrayRef, mut each: impl FnMut(usize, i256) -> Result<()>) -> Result<()> {
        let a = states
            .as_any()
            .downcast_ref::<Decimal256Array>()
            .ok_or_else(|| exec_datafusion_err!("checked sum: unexpected state type {}", states.data_type()))?;
        for (i, v) in a.iter().enumerate() {
            if let Some(v) = v {
                each(i, v)?;
            }
        }
        Ok(())
    }

    fn overflow(self, total: i256, what: &str) -> DataFusionError {
        match self {
            SumOf::Decimal { precision, scale } => DataFusionError::Execution(format!(
                "[ARITHMETIC_OVERFLOW] overflow in sum of decimals: {what} is {} and does not fit DECIMAL({precision},{scale}) (Spark in ANSI mode fails here too, it never wraps); sum fewer rows or cast the summed values to DOUBLE",
                format_unscaled(total, scale)
            )),
            SumOf::Long => DataFusionError::Execution(format!(
                "[ARITHMETIC_OVERFLOW] integer overflow: {what} is {total} and does not fit BIGINT (Spark in ANSI mode fails here too, it never wraps); cast the summed values to DECIMAL(38,0)"
            )),
        }
    }

    /// The final value of one sum.
    fn finish(self, total: i256, what: &str) -> Result<i128> {
        match self {
            SumOf::Decimal { precision, .. } => {
                let limit = pow10(precision as u32).expect("fits");
                match total.checked_abs() {
                    Some(m) if m < limit => Ok(total.to_i128().expect("fits")),
                    _ => Err(self.overflow(total, what)),
                }
            }
            SumOf::Long => match total.to_i128().and_then(|v| i64::try_from(v).ok()) {
                Some(v) => Ok(v as i128),
                None => Err(self.overflow(total, what)),
            },
        }
    }

    /// The final values, built straight into the result array: a `Vec<Option<i128>>` first
    /// would hold 32 bytes a group beside the array while millions of groups are emitted.
    fn result(self, sums: impl Iterator<Item = Option<i256>>, what: &str) -> Result<ArrayRef> {
        let n = sums.size_hint().0;
        match self {
            SumOf::Decimal { precision, scale } => {
                let mut b = Decimal128Builder::with_capacity(n);
                for s in sums {
                    match s {
                        Some(t) => b.append_value(self.finish(t, what)?),
                        None => b.append_null(),
                    }
                }
                Ok(Arc::new(b.finish().with_precision_and_scale(precision, scale)?))
            }
            SumOf::Long => {
                let mut b = Int64Builder::with_capacity(n);
                for s in sums {
                    match s {
                        Some(t) => b.append_value(self.finish(t, what)? as i64),
                        None => b.append_null(),
                    }
                }
                Ok(Arc::new(b.finish()))
            }
        }
    }

    fn states(self, sums: impl Iterator<Item = Option<i256>>) -> Result<ArrayRef> {
        let array: Decimal256Array = sums.collect();
        Ok(Arc::new(array.with_data_type(self.state_type())))
    }
}

fn add_checked(acc: &mut i256, v: i256, of: SumOf, what: &str) -> Result<()> {
    *acc = acc.checked_add(v).ok_or_else(|| of.overflow(*acc, what))?;
    Ok(())
}

#[derive(Debug)]
struct SumAcc {
    of: SumOf,
    what: String,
    sum: Option<i256>,
    /// Values in a sliding window frame (its sum is NULL when none is left).
    count: u64,
}

impl Accumulator for SumAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (of, sum, what, count) = (self.of, &mut self.sum, &self.what, &mut self.count);
        of.add_values(&values[0], |_, v| {
            *count += 1;
            add_checked(sum.get_or_insert(i256::ZERO), v, of, what)
        })
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (of, sum, what, count) = (self.of, &mut self.sum, &self.what, &mut self.count);
        of.add_values(&values[0], |_, v| {
            *count = count.saturating_sub(1);
            let negated = v.checked_neg().ok_or_else(|| of.overflow(v, what))?;
            add_checked(sum.get_or_insert(i256::ZERO), negated, of, what)
        })?;
        if self.count == 0 {
            self.sum = None;
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (of, sum, what) = (self.of, &mut self.sum, &self.what);
        SumOf::add_states(&states[0], |_, v| {
            add_checked(sum.get_or_insert(i256::ZERO), v, of, what)
        })
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let array = self.of.result(std::iter::once(self.sum), &self.what)?;
        ScalarValue::try_from_array(&array, 0)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let array = self.of.states(std::iter::once(self.sum))?;
        Ok(vec![ScalarValue::try_from_array(&array, 0)?])
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

/// The running sums of a grouped checked sum, as narrow as they fit. Spark adds decimals
/// without bounds and checks the total at the end, so a sum may leave 64 or 128 bits on its
/// way; almost none does, and 8 bytes a group instead of 32 is what a `SUM` beside a
/// `COUNT(DISTINCT ..)` (planned as one group per distinct value) holds for every row. The
/// first sum that does not fit widens them all.
#[derive(Debug)]
enum Sums {
    I64(Vec<i64>),
    I128(Vec<i128>),
    I256(Vec<i256>),
}

impl Sums {
    fn resize(&mut self, n: usize) {
        match self {
            Sums::I64(s) => s.resize(n, 0),
            Sums::I128(s) => s.resize(n, 0),
            Sums::I256(s) => s.resize(n, i256::ZERO),
        }
    }

    fn widen(&mut self) {
        *self = match self {
            Sums::I64(s) => Sums::I128(s.iter().map(|&v| v as i128).collect()),
            Sums::I128(s) => Sums::I256(s.iter().map(|&v| i256::from_i128(v)).collect()),
            Sums::I256(_) => return,
        };
    }

    /// Adds `v` to group `g` when the sum stays within the current width.
    #[inline]
    fn try_add(&mut self, g: usize, v: i128) -> bool {
        let sum = match self {
            Sums::I64(s) => i64::try_from(v)
                .ok()
                .and_then(|v| s[g].checked_add(v))
                .map(|t| s[g] = t),
            Sums::I128(s) => s[g].checked_add(v).map(|t| s[g] = t),
            Sums::I256(_) => None,
        };
        sum.is_some()
    }

    fn add(&mut self, g: usize, v: i256, of: SumOf, what: &str) -> Result<()> {
        loop {
            if v.to_i128().is_some_and(|v| self.try_add(g, v)) {
                return Ok(());
            }
            match self {
                Sums::I256(s) => return add_checked(&mut s[g], v, of, what),
                _ => self.widen(),
            }
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Box<dyn Iterator<Item = i256>> {
        match self {
            Sums::I64(s) => Box::new(emit_to.take_needed(s).into_iter().map(|v| i256::from_i128(v as i128))),
            Sums::I128(s) => Box::new(emit_to.take_needed(s).into_iter().map(i256::from_i128)),
            Sums::I256(s) => Box::new(emit_to.take_needed(s).into_iter()),
        }
    }

    fn capacity_bytes(&self) -> usize {
        match self {
            Sums::I64(s) => s.capacity() * std::mem::size_of::<i64>(),
            Sums::I128(s) => s.capacity() * std::mem::size_of::<i128>(),
            Sums::I256(s) => s.capacity() * std::mem::size_of::<i256>(),
        }
    }
}

#[derive(Debug)]
struct SumGroups {
    of: SumOf,
    what: String,
    sums: Sums,
    seen: Vec<bool>,
}

impl SumGroups {
    fn apply(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
        states: bool,
    ) -> Result<()> {
        self.sums.resize(total_num_groups);
        self.seen.resize(total_num_groups, false);
        let (of, sums, seen, what) = (self.of, &mut self.sums, &mut self.seen, &self.what);
        // The common case (input values, no NULLs, no filter) in one tight loop.
        if !states && opt_filter.is_none() && values.null_count() == 0 {
            let mut add = |g: usize, v: i128| {
                seen[g] = true;
                match sums.try_add(g, v) {
                    true => Ok(()),
                    false => sums.add(g, i256::from_i128(v), of, what),
                }
            };
            match of {
                SumOf::Decimal { .. } => {
                    let a = values.as_primitive::<Decimal128Type>();
                    for (&g, &v) in group_indices.iter().zip(a.values().iter()) {
                        add(g, v)?;
                    }
                }
                SumOf::Long => {
                    let a = values.as_primitive::<Int64Type>();
                    for (&g, &v) in group_indices.iter().zip(a.values().iter()) {
                        add(g, v as i128)?;
                    }
                }
            }
            return Ok(());
        }
        let mut each = |row: usize, v: i256| {
            if opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                return Ok(());
            }
            let g = group_indices[row];
            seen[g] = true;
            sums.add(g, v, of, what)
        };
        if states {
            SumOf::add_states(values, &mut each)
        } else {
            of.add_values(values, &mut each)
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> impl Iterator<Item = Option<i256>> {
        let seen = emit_to.take_needed(&mut self.seen);
        self.sums.take(emit_to).zip(seen).map(|(s, seen)| seen.then_some(s))
    }
}

impl GroupsAccumulator for SumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.apply(&values[0], group_indices, opt_filter, total_num_groups, false)
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        // A BIGINT sum still in 64 bits is its own result: the values become the array's
        // buffer instead of being copied beside it (millions of groups are emitted at once).
        if let (SumOf::Long, Sums::I64(s)) = (self.of, &mut self.sums) {
            let sums = emit_to.take_needed(s);
            let seen = emit_to.take_needed(&mut self.seen);
            let nulls = (!seen.iter().all(|s| *s)).then(|| NullBuffer::from(seen));
            return Ok(Arc::new(Int64Array::new(sums.into(), nulls)));
        }
        let (of, what) = (self.of, self.what.clone());
        of.result(self.take(emit_to), &what)
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let of = self.of;
        Ok(vec![of.states(self.take(emit_to))?])
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.apply(&values[0], group_indices, opt_filter, total_num_groups, true)
    }
    /// Each row as a group of its own: what DataFusion passes on instead of partial sums once
    /// it sees the partial aggregation does not shrink the input (one group per distinct value
    /// under `COUNT(DISTINCT ..)`). Without it every row's group was held twice.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut states = vec![None; values[0].len()];
        self.of.add_values(&values[0], |row, v| {
            if !opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                states[row] = Some(v);
            }
            Ok(())
        })?;
        Ok(vec![self.of.states(states.into_iter())?])
    }
    fn supports_convert_to_state(&self) -> bool {
        true
    }
    fn size(&self) -> usize {
        self.sums.capacity_bytes() + self.seen.capacity()
    }
}

impl AggregateUDFImpl for CheckedSum {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        "sum"
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match SumOf::of(&args) {
            Some(of) => Ok(Box::new(SumAcc {
                of,
                what: self.what(&args),
                sum: None,
                count: 0,
            })),
            None => self.inner.accumulator(args),
        }
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let of = match args.return_field.data_type() {
            _ if args.is_distinct => None,
            DataType::Decimal128(precision, scale) => Some(SumOf::Decimal {
                precision: *precision,
                scale: *scale,
            }),
            DataType::Int64 => Some(SumOf::Long),
            _ => None,
        };
        match of {
            Some(of) => Ok(vec![Arc::new(Field::new(
                format!("{}[sum256]", args.name),
                of.state_type(),
                true,
            ))]),
            None => self.inner.state_fields(args),
        }
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        SumOf::of(&args).is_some() || self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        match SumOf::of(&args) {
            Some(of) => Ok(Box::new(SumGroups {
                of,
                what: self.what(&args),
                sums: Sums::I64(Vec::new()),
                seen: Vec::new(),
            })),
            None => self.inner.create_groups_accumulator(args),
        }
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match SumOf::of(&args) {
            Some(of) => Ok(Box::new(SumAcc {
                of,
                what: self.what(&args),
                sum: None,
                count: 0,
            })),
            None => self.inner.create_sliding_accumulator(args),
        }
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn order_sensitivity(&self) -> datafusion::logical_expr::utils::AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn set_monotonicity(&self, data_type: &DataType) -> datafusion::logical_expr::SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
}

/// Installs Spark's arithmetic in a session state builder's analyzer (before type coercion)
/// and returns the rules to use.
pub fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules = datafusion::optimizer::Analyzer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "type_coercion")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(SparkArithmetic::default()));
    rules
}

/// Registers the checked `SUM` (replacing DataFusion's) and DataFusion's `AVG`, whose
/// result types are Spark's (`DECIMAL(p + 4, s + 4)` for decimals, `DOUBLE` otherwise), in
/// place of datafusion-spark's, which averages decimals as doubles and has no `DISTINCT`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(datafusion::functions_aggregate::average::avg_udaf().as_ref().clone());
    ctx.register_udaf(AggregateUDF::new_from_impl(CheckedSum {
        inner: datafusion::functions_aggregate::sum::Sum::new(),
        label: None,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_sums_widen_without_losing_a_value() {
        let of = SumOf::Decimal {
            precision: 38,
            scale: 0,
        };
        let mut s = Sums::I64(Vec::new());
        s.resize(3);
        s.add(0, i256::from_i128(i64::MAX as i128), of, "x").unwrap();
        s.add(2, i256::from_i128(-5), of, "x").unwrap();
        assert!(matches!(s, Sums::I64(_)));
        s.add(0, i256::ONE, of, "x").unwrap();
        assert!(matches!(s, Sums::I128(_)));
        s.add(1, i256::from_i128(i128::MAX), of, "x").unwrap();
        s.add(1, i256::from_i128(i128::MAX), of, "x").unwrap();
        assert!(matches!(s, Sums::I256(_)));
        s.add(1, i256::from_i128(-i128::MAX), of, "x").unwrap();
        let sums: Vec<i256> = s.take(EmitTo::All).collect();
        assert_eq!(
            sums,
            [
                i256::from_i128(i64::MAX as i128 + 1),
                i256::from_i128(i128::MAX),
                i256::from_i128(-5)
            ]
        );
    }

    #[test]
    fn spark_result_types() {
        use DecimalOp::*;
        assert_eq!(decimal_result_type(Add, (1, 1), (1, 1)), (2, 1));
        assert_eq!(decimal_result_type(Mul, (38, 10), (38, 10)), (38, 6));
        assert_eq!(decimal_result_type(Div, (10, 2), (10, 2)), (23, 13));
        assert_eq!(decimal_result_type(Div, (38, 10), (38, 10)), (38, 6));
        assert_eq!(decimal_result_type(Div, (38, 0), (38, 0)), (38, 6));
        assert_eq!(decimal_result_type(Mul, (10, 2), (1, 0)), (12, 2));
    }

    #[test]
    fn half_up_and_overflow() {
        use DecimalOp::*;
        // 2/3 at scale 6 = 0.666667; -2/3 = -0.666667
        assert_eq!(decimal_apply(Div, 2, 0, 3, 0, (38, 6)), Ok(666_667));
        assert_eq!(decimal_apply(Div, -2, 0, 3, 0, (38, 6)), Ok(-666_667));
        // 0.125 rounded to 2 places is 0.13 (HALF_UP), -0.125 is -0.13
        assert_eq!(decimal_apply(Mul, 125, 3, 1, 0, (10, 2)), Ok(13));
        assert_eq!(decimal_apply(Mul, -125, 3, 1, 0, (10, 2)), Ok(-13));
        let max = 10i128.pow(38) - 1;
        assert!(matches!(
            decimal_apply(Add, max, 0, max, 0, (38, 0)),
            Err(DecimalFault::Overflow(Some(_)))
        ));
        assert_eq!(decimal_apply(Div, 1, 0, 0, 0, (38, 6)), Err(DecimalFault::DivideByZero));
        assert_eq!(format_unscaled(i256::from_i128(-12340), 3), "-12.340");
        assert_eq!(format_unscaled(i256::from_i128(5), 3), "0.005");
    }
}

/// `CAST(expr AS to)` for writing a result column to its declared type: values that do not
/// fit are an error naming `label` (the column), never NULL or a wrapped value.
pub fn store_cast(expr: Expr, to: DataType, label: String) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(StoreCast {
            signature: Signature::any(1, Volatility::Immutable),
            to,
            label,
        })),
        vec![expr],
    ))
}

/// Casts one array with overflow checks; the error names `label`.
pub fn checked_cast(array: &ArrayRef, to: &DataType, label: &str) -> Result<ArrayRef> {
    use datafusion::arrow::compute::{cast_with_options, CastOptions};
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, to, &options).map_err(|e| {
        DataFusionError::Execution(format!(
            "{label}: a value of the result ({}) does not fit the declared type {to}: {e}",
            array.data_type()
        ))
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StoreCast {
    signature: Signature,
    to: DataType,
    label: String,
}

impl ScalarUDFImpl for StoreCast {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn name(&self) -> &str {
        "mesh_store_cast"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.to.clone())
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(checked_cast(&arrays[0], &self.to, &self.label)?))
    }
}
