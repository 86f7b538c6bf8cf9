//! The native OTLP protobuf span encoder of otel-bridge.
//!
//! It writes exactly the bytes of the pure-Python encoder
//! (`otel_bridge/sinks/otlp_proto.py`), which stays the reference: the tests
//! compare the two byte for byte. It handles the common case only: a span
//! record whose every value has its exact expected type and fits its field
//! (plain `str`, `bytes`, `bool`, `int` within 64 bits, `float`, tuples and
//! lists, dicts). On anything else (a lone surrogate, an integer past 64 bits,
//! a negative time, an unknown type, nesting deeper than `MAX_DEPTH`) it
//! *bails*: the span is handed to the Python fallback (the pure encoder, which
//! clamps), so the output is the reference's by construction and no edge case
//! is decided twice.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// The fast path does not handle this value: the span goes to the fallback.
struct Bail;

type R<T> = Result<T, Bail>;

impl From<PyErr> for Bail {
    fn from(_: PyErr) -> Self {
        Bail
    }
}

/// Arrays nested deeper than this go to the fallback (which recurses in Python).
const MAX_DEPTH: u32 = 32;

// Tags: (field << 3) | wire type; see otlp_proto.py for the field numbers.
const T_TRACE_ID: u8 = 0x0A;
const T_SPAN_ID: u8 = 0x12;
const T_PARENT: u8 = 0x22;
const T_NAME: u8 = 0x2A;
const T_KIND: u8 = 0x30;
const T_START: u8 = 0x39;
const T_END: u8 = 0x41;
const T_ATTR: u8 = 0x4A;
const T_EVENT: u8 = 0x5A;
const T_DROPPED_EVENTS: u8 = 0x60;
const T_LINK: u8 = 0x6A;
const T_STATUS: u8 = 0x7A;
const FLAGS: [u8; 6] = [0x85, 0x01, 0x01, 0x01, 0x00, 0x00]; // field 16 fixed32: HAS_IS_REMOTE mask + sampled
const T_EV_TIME: u8 = 0x09;
const T_EV_NAME: u8 = 0x12;
const T_EV_ATTR: u8 = 0x1A;
const T_LINK_ATTR: u8 = 0x22;
const T_STATUS_MSG: u8 = 0x12;
const T_STATUS_CODE: u8 = 0x18;
const T_KV_KEY: u8 = 0x0A;
const T_KV_VALUE: u8 = 0x12;
const T_AV_STRING: u8 = 0x0A;
const T_AV_BOOL: u8 = 0x10;
const T_AV_INT: u8 = 0x18;
const T_AV_DOUBLE: u8 = 0x21;
const T_AV_ARRAY: u8 = 0x2A;
const T_ARRAY_VALUES: u8 = 0x0A;
const T_SCOPE_SPAN: u8 = 0x12; // ScopeSpans.spans

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Opens a length-delimited field: the tag and one byte reserved for the length.
#[inline]
fn open(buf: &mut Vec<u8>, tag: u8) -> usize {
    buf.push(tag);
    buf.push(0);
    buf.len()
}

/// Closes the field opened at `start`: writes its length, moving the payload when it needs more than one byte.
#[inline]
fn close(buf: &mut Vec<u8>, start: usize) {
    let n = buf.len() - start;
    if n < 0x80 {
        buf[start - 1] = n as u8;
        return;
    }
    let mut len = [0u8; 10];
    let mut i = 0;
    let mut v = n as u64;
    while v >= 0x80 {
        len[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    len[i] = v as u8;
    i += 1;
    let extra = i - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(start..start + n, start + extra);
    buf[start - 1..start - 1 + i].copy_from_slice(&len[..i]);
}

#[inline]
fn put_ld(buf: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    buf.push(tag);
    put_varint(buf, payload.len() as u64);
    buf.extend_from_slice(payload);
}

/// A plain `str` as UTF-8 (fails on a lone surrogate).
#[inline]
fn text<'a>(value: &'a Bound<'_, PyAny>) -> R<&'a str> {
    if !value.is_exact_instance_of::<PyString>() {
        return Err(Bail);
    }
    // SAFETY of the cast: checked just above.
    let s = unsafe { value.cast_unchecked::<PyString>() };
    Ok(s.to_str()?)
}

/// A plain `bytes`.
#[inline]
fn raw<'a>(value: &'a Bound<'_, PyAny>) -> R<&'a [u8]> {
    if !value.is_exact_instance_of::<PyBytes>() {
        return Err(Bail);
    }
    let b = unsafe { value.cast_unchecked::<PyBytes>() };
    Ok(b.as_bytes())
}

/// An `int` as the 64 bits protobuf writes: int64 two's complement, or uint64 (the pure encoder's range).
#[inline]
fn int64(value: &Bound<'_, PyAny>) -> R<u64> {
    if let Ok(v) = value.extract::<i64>() {
        return Ok(v as u64);
    }
    Ok(value.extract::<u64>()?)
}

/// A plain `int` that fits `fixed64` (a time).
#[inline]
fn time(value: &Bound<'_, PyAny>) -> R<u64> {
    if !value.is_exact_instance_of::<PyInt>() {
        return Err(Bail);
    }
    Ok(value.extract::<u64>()?)
}

fn any_value(buf: &mut Vec<u8>, value: &Bound<'_, PyAny>, depth: u32) -> R<()> {
    if value.is_exact_instance_of::<PyString>() {
        put_ld(buf, T_AV_STRING, text(value)?.as_bytes());
    } else if value.is_exact_instance_of::<PyBool>() {
        buf.push(T_AV_BOOL);
        buf.push(if value.is_truthy()? { 1 } else { 0 });
    } else if value.is_exact_instance_of::<PyInt>() {
        let v = int64(value)?;
        buf.push(T_AV_INT);
        put_varint(buf, v);
    } else if value.is_exact_instance_of::<PyFloat>() {
        let f = unsafe { value.cast_unchecked::<PyFloat>() }.value();
        buf.push(T_AV_DOUBLE);
        buf.extend_from_slice(&f.to_le_bytes());
    } else if value.is_exact_instance_of::<PyTuple>() || value.is_exact_instance_of::<PyList>() {
        if depth >= MAX_DEPTH {
            return Err(Bail);
        }
        let array = open(buf, T_AV_ARRAY);
        for item in value.try_iter()? {
            let item = item?;
            let entry = open(buf, T_ARRAY_VALUES);
            any_value(buf, &item, depth + 1)?;
            close(buf, entry);
        }
        close(buf, array);
    } else {
        return Err(Bail);
    }
    Ok(())
}

fn attributes(buf: &mut Vec<u8>, tag: u8, attrs: &Bound<'_, PyAny>) -> R<()> {
    if !attrs.is_exact_instance_of::<PyDict>() {
        return Err(Bail);
    }
    let dict = unsafe { attrs.cast_unchecked::<PyDict>() };
    for (key, value) in dict.iter() {
        let kv = open(buf, tag);
        put_ld(buf, T_KV_KEY, text(&key)?.as_bytes());
        let v = open(buf, T_KV_VALUE);
        any_value(buf, &value, 0)?;
        close(buf, v);
        close(buf, kv);
    }
    Ok(())
}

/// A plain tuple or list, as a list of its items.
fn items<'py>(value: &Bound<'py, PyAny>) -> R<Vec<Bound<'py, PyAny>>> {
    if !(value.is_exact_instance_of::<PyTuple>() || value.is_exact_instance_of::<PyList>()) {
        return Err(Bail);
    }
    let mut out = Vec::new();
    if value.len()? == 0 {
        return Ok(out); // the common case (no events, no links): no iterator object
    }
    for item in value.try_iter()? {
        out.push(item?);
    }
    Ok(out)
}

fn span_body(buf: &mut Vec<u8>, py: Python<'_>, span: &Bound<'_, PyAny>, unset: &Bound<'_, PyAny>) -> R<()> {
    put_ld(buf, T_TRACE_ID, raw(&span.getattr(intern!(py, "trace_id"))?)?);
    put_ld(buf, T_SPAN_ID, raw(&span.getattr(intern!(py, "span_id"))?)?);
    let parent = span.getattr(intern!(py, "parent_span_id"))?;
    if !parent.is_none() {
        let parent = raw(&parent)?;
        if !parent.is_empty() {
            put_ld(buf, T_PARENT, parent);
        }
    }
    put_ld(buf, T_NAME, text(&span.getattr(intern!(py, "name"))?)?.as_bytes());
    let kind = span.getattr(intern!(py, "kind"))?;
    if !kind.is_instance_of::<PyInt>() {
        return Err(Bail);
    }
    buf.push(T_KIND);
    put_varint(buf, int64(&kind)?);
    buf.push(T_START);
    buf.extend_from_slice(&time(&span.getattr(intern!(py, "start_ns"))?)?.to_le_bytes());
    buf.push(T_END);
    buf.extend_from_slice(&time(&span.getattr(intern!(py, "end_ns"))?)?.to_le_bytes());
    attributes(buf, T_ATTR, &span.getattr(intern!(py, "attributes"))?)?;
    for event in items(&span.getattr(intern!(py, "events"))?)? {
        let ev = open(buf, T_EVENT);
        buf.push(T_EV_TIME);
        buf.extend_from_slice(&time(&event.getattr(intern!(py, "time_ns"))?)?.to_le_bytes());
        put_ld(buf, T_EV_NAME, text(&event.getattr(intern!(py, "name"))?)?.as_bytes());
        attributes(buf, T_EV_ATTR, &event.getattr(intern!(py, "attributes"))?)?;
        close(buf, ev);
    }
    let dropped = span.getattr(intern!(py, "dropped_events"))?;
    if !dropped.is_exact_instance_of::<PyInt>() {
        return Err(Bail);
    }
    let dropped = int64(&dropped)?;
    if dropped != 0 {
        buf.push(T_DROPPED_EVENTS);
        put_varint(buf, dropped);
    }
    for link in items(&span.getattr(intern!(py, "links"))?)? {
        let lk = open(buf, T_LINK);
        put_ld(buf, T_TRACE_ID, raw(&link.getattr(intern!(py, "trace_id"))?)?);
        put_ld(buf, T_SPAN_ID, raw(&link.getattr(intern!(py, "span_id"))?)?);
        attributes(buf, T_LINK_ATTR, &link.getattr(intern!(py, "attributes"))?)?;
        close(buf, lk);
    }
    let code = span.getattr(intern!(py, "status_code"))?;
    if !code.is(unset) {
        if !code.is_instance_of::<PyInt>() {
            return Err(Bail);
        }
        let code = int64(&code)?;
        let status = open(buf, T_STATUS);
        let message = span.getattr(intern!(py, "status_message"))?;
        let message = text(&message)?;
        if !message.is_empty() {
            put_ld(buf, T_STATUS_MSG, message.as_bytes());
        }
        buf.push(T_STATUS_CODE);
        put_varint(buf, code);
        close(buf, status);
    }
    buf.extend_from_slice(&FLAGS);
    Ok(())
}

/// One span's ``Span`` message body, or ``None`` where the fast path bails (the caller then uses the pure encoder).
///
/// ``unset`` is ``StatusCode.UNSET`` (a span whose status code is that object carries no status).
#[pyfunction]
fn encode_span<'py>(
    py: Python<'py>,
    span: &Bound<'py, PyAny>,
    unset: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let mut buf = Vec::with_capacity(512);
    match span_body(&mut buf, py, span, unset) {
        Ok(()) => Ok(Some(PyBytes::new(py, &buf))),
        Err(Bail) => Ok(None),
    }
}

/// Every span as a ``ScopeSpans.spans`` field (field 2, length-delimited), concatenated.
///
/// A span the fast path bails on is encoded by ``fallback(span) -> bytes`` (its message body);
/// what ``fallback`` raises is raised.
#[pyfunction]
fn encode_span_fields<'py>(
    py: Python<'py>,
    spans: &Bound<'py, PyAny>,
    unset: &Bound<'py, PyAny>,
    fallback: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut buf = Vec::with_capacity(1024);
    for span in spans.try_iter()? {
        let span = span?;
        let mark = buf.len();
        let start = open(&mut buf, T_SCOPE_SPAN);
        if span_body(&mut buf, py, &span, unset).is_ok() {
            close(&mut buf, start);
            continue;
        }
        buf.truncate(mark);
        let body = fallback.call1((&span,))?;
        if !body.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err("the fallback encoder must return bytes"));
        }
        put_ld(&mut buf, T_SCOPE_SPAN, unsafe { body.cast_unchecked::<PyBytes>() }.as_bytes());
    }
    Ok(PyBytes::new(py, &buf))
}

#[pymodule]
fn otel_bridge_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The interface version otel_bridge/sinks/otlp_proto.py checks (NATIVE_ABI): bump it with any change
    // of the functions below or of the bytes they write.
    m.add("ABI", 1)?;
    m.add_function(wrap_pyfunction!(encode_span, m)?)?;
    m.add_function(wrap_pyfunction!(encode_span_fields, m)?)?;
    Ok(())
}
