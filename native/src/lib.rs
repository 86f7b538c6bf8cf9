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
//!
//! Why it talks to CPython through raw `ffi` calls: the encoding itself is a few
//! hundred instructions a span; what cost most was the C-API around it (a
//! `getattr` for every field, a new reference taken and dropped for every value,
//! generic iterators). So it reads a record's fields straight from their slots
//! when its type allows exactly that (see [`layout_of`]), holds only borrowed
//! references while it writes (no Python code runs then, so nothing it reads can
//! change or go away), walks dicts with `PyDict_Next` and tuples by index, reads
//! ASCII strings in place, and writes fields whose sizes it knows without patching
//! lengths. It is built for the running interpreter, not for the stable ABI
//! (abi3): slot offsets, string internals and the inline macros are outside the
//! limited API.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr::{addr_of_mut, null_mut};
use std::sync::{Mutex, OnceLock};

type Obj = *mut ffi::PyObject;

/// The fast path does not handle this value: the span goes to the fallback.
struct Bail;

type R<T> = Result<T, Bail>;

/// A failed C-API call: its exception is dropped (the fallback decides), and the span bails.
#[cold]
fn bail<T>() -> R<T> {
    unsafe { ffi::PyErr_Clear() };
    Err(Bail)
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

// --- protobuf writing -------------------------------------------------------------------------

#[inline]
fn varint_len(v: u64) -> usize {
    // ceil(significant bits / 7), 0 taking one byte; written out: `div_ceil` costs a remainder
    #[allow(clippy::manual_div_ceil)]
    let n = ((64 - (v | 1).leading_zeros() as usize) + 6) / 7;
    n
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn put_ld(buf: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    buf.push(tag);
    put_varint(buf, payload.len() as u64);
    buf.extend_from_slice(payload);
}

/// Writes into a `Vec`'s spare capacity, which the caller reserved for everything it writes (the
/// hot paths know their sizes up front: one capacity check instead of one a byte).
struct Out {
    p: *mut u8,
}

impl Out {
    /// A cursor at the end of `buf`, with `room` bytes reserved.
    #[inline(always)]
    fn at_end(buf: &mut Vec<u8>, room: usize) -> Out {
        buf.reserve(room);
        Out { p: unsafe { buf.as_mut_ptr().add(buf.len()) } }
    }

    /// Makes what was written part of `buf` (the cursor must come from `at_end` on `buf`).
    #[inline(always)]
    unsafe fn commit(self, buf: &mut Vec<u8>) {
        let len = self.p.offset_from(buf.as_ptr()) as usize;
        buf.set_len(len);
    }

    #[inline(always)]
    unsafe fn byte(&mut self, b: u8) {
        *self.p = b;
        self.p = self.p.add(1);
    }

    #[inline(always)]
    unsafe fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline(always)]
    unsafe fn bytes(&mut self, s: &[u8]) {
        copy_small(s.as_ptr(), self.p, s.len());
        self.p = self.p.add(s.len());
    }

    #[inline(always)]
    unsafe fn ld(&mut self, tag: u8, payload: &[u8]) {
        self.byte(tag);
        self.varint(payload.len() as u64);
        self.bytes(payload);
    }

    #[inline(always)]
    unsafe fn fixed64(&mut self, v: u64) {
        std::ptr::copy_nonoverlapping(v.to_le_bytes().as_ptr(), self.p, 8);
        self.p = self.p.add(8);
    }
}

/// Copies `n` bytes; up to 32 without a call to `memcpy` (most keys and values are short, and the
/// call and its dispatch cost more than the copy): two overlapping loads and stores, all in bounds.
#[inline(always)]
unsafe fn copy_small(src: *const u8, dst: *mut u8, n: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    if n >= 16 {
        if n > 32 {
            std::ptr::copy_nonoverlapping(src, dst, n);
            return;
        }
        let (a, b) = (rd(src as *const u128), rd(src.add(n - 16) as *const u128));
        wr(dst as *mut u128, a);
        wr(dst.add(n - 16) as *mut u128, b);
    } else if n >= 8 {
        let (a, b) = (rd(src as *const u64), rd(src.add(n - 8) as *const u64));
        wr(dst as *mut u64, a);
        wr(dst.add(n - 8) as *mut u64, b);
    } else if n >= 4 {
        let (a, b) = (rd(src as *const u32), rd(src.add(n - 4) as *const u32));
        wr(dst as *mut u32, a);
        wr(dst.add(n - 4) as *mut u32, b);
    } else if n > 0 {
        *dst = *src;
        *dst.add(n / 2) = *src.add(n / 2);
        *dst.add(n - 1) = *src.add(n - 1);
    }
}

/// Room for a length-delimited field with a payload of `n` bytes (tag, varint, payload).
#[inline(always)]
fn ld_room(n: usize) -> usize {
    n + 11
}

/// Opens a length-delimited field whose length is not known yet: its tag and `reserve` bytes for the length.
#[inline]
fn open(buf: &mut Vec<u8>, tag: u8, reserve: usize) -> usize {
    buf.push(tag);
    buf.resize(buf.len() + reserve, 0);
    buf.len()
}

/// Closes the field opened at `start` with `reserve` bytes: writes its length, moving the payload
/// only when the length's varint is not `reserve` bytes long.
#[inline]
fn close(buf: &mut Vec<u8>, start: usize, reserve: usize) {
    let n = buf.len() - start;
    let need = varint_len(n as u64);
    if need != reserve {
        if need > reserve {
            buf.resize(buf.len() + (need - reserve), 0);
            buf.copy_within(start..start + n, start + need - reserve);
        } else {
            buf.copy_within(start..start + n, start - (reserve - need));
            buf.truncate(buf.len() - (reserve - need));
        }
    }
    let mut at = start - reserve;
    let mut v = n as u64;
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
}

// --- reading Python values (borrowed references, exact types) --------------------------------

#[inline]
unsafe fn is(obj: Obj, ty: *mut ffi::PyTypeObject) -> bool {
    ffi::Py_TYPE(obj) == ty
}

/// A plain `str` as UTF-8 (bails on a lone surrogate). Borrowed from the string, which outlives the use.
#[inline]
unsafe fn text<'a>(obj: Obj) -> R<&'a [u8]> {
    if !is(obj, addr_of_mut!(ffi::PyUnicode_Type)) {
        return Err(Bail);
    }
    #[cfg(not(Py_3_14))]
    if ffi::PyUnicode_IS_COMPACT_ASCII(obj) != 0 {
        // ASCII is its own UTF-8: the characters follow the object header.
        let len = (*(obj as *mut ffi::PyASCIIObject)).length as usize;
        let data = (obj as *mut ffi::PyASCIIObject).offset(1) as *const u8;
        return Ok(std::slice::from_raw_parts(data, len));
    }
    let mut len: ffi::Py_ssize_t = 0;
    let data = ffi::PyUnicode_AsUTF8AndSize(obj, &mut len);
    if data.is_null() {
        return bail();
    }
    Ok(std::slice::from_raw_parts(data as *const u8, len as usize))
}

/// A plain `bytes`.
#[inline]
unsafe fn raw<'a>(obj: Obj) -> R<&'a [u8]> {
    if !is(obj, addr_of_mut!(ffi::PyBytes_Type)) {
        return Err(Bail);
    }
    let data = ffi::PyBytes_AS_STRING(obj) as *const u8;
    Ok(std::slice::from_raw_parts(data, ffi::Py_SIZE(obj) as usize))
}

/// An `int` (of any subclass) as the 64 bits protobuf writes: int64 two's complement, or uint64
/// (the pure encoder's range).
#[inline]
unsafe fn int64(obj: Obj) -> R<u64> {
    let mut overflow: c_int = 0;
    let v = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
    if overflow == 0 {
        if v == -1 && !ffi::PyErr_Occurred().is_null() {
            return bail();
        }
        return Ok(v as u64);
    }
    if overflow < 0 {
        return Err(Bail);
    }
    let u = ffi::PyLong_AsUnsignedLongLong(obj);
    if u == u64::MAX && !ffi::PyErr_Occurred().is_null() {
        return bail();
    }
    Ok(u)
}

/// A plain `int` that fits `fixed64` (a time).
#[inline]
unsafe fn time(obj: Obj) -> R<u64> {
    if !is(obj, addr_of_mut!(ffi::PyLong_Type)) {
        return Err(Bail);
    }
    let mut overflow: c_int = 0;
    let v = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
    if overflow == 0 && v >= 0 {
        return Ok(v as u64);
    }
    if overflow <= 0 {
        return Err(Bail); // negative (PyLong_AsLongLongAndOverflow cannot fail on an exact int)
    }
    let u = ffi::PyLong_AsUnsignedLongLong(obj);
    if u == u64::MAX && !ffi::PyErr_Occurred().is_null() {
        return bail();
    }
    Ok(u)
}

#[inline]
unsafe fn is_int(obj: Obj) -> bool {
    ffi::PyLong_Check(obj) != 0
}

/// A plain tuple or list: its items (borrowed; the list cannot change while no Python code runs).
#[inline]
unsafe fn items<'a>(obj: Obj) -> R<&'a [Obj]> {
    if is(obj, addr_of_mut!(ffi::PyTuple_Type)) {
        let n = ffi::PyTuple_GET_SIZE(obj) as usize;
        let first = (*(obj as *mut ffi::PyTupleObject)).ob_item.as_ptr();
        return Ok(std::slice::from_raw_parts(first, n));
    }
    if is(obj, addr_of_mut!(ffi::PyList_Type)) {
        let n = ffi::PyList_GET_SIZE(obj) as usize;
        if n == 0 {
            return Ok(&[]);
        }
        return Ok(std::slice::from_raw_parts((*(obj as *mut ffi::PyListObject)).ob_item, n));
    }
    Err(Bail)
}

// --- attribute values -----------------------------------------------------------------------

/// An `AnyValue` that is not an array: its message body is written without a length to patch.
enum Scalar<'a> {
    Str(&'a [u8]),
    Bool(bool),
    Int(u64),
    Double(f64),
}

impl Scalar<'_> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Scalar::Str(s) => 1 + varint_len(s.len() as u64) + s.len(),
            Scalar::Bool(_) => 2,
            Scalar::Int(v) => 1 + varint_len(*v),
            Scalar::Double(_) => 9,
        }
    }

    #[inline(always)]
    unsafe fn write(&self, o: &mut Out) {
        match self {
            Scalar::Str(s) => o.ld(T_AV_STRING, s),
            Scalar::Bool(b) => {
                o.byte(T_AV_BOOL);
                o.byte(*b as u8);
            }
            Scalar::Int(v) => {
                o.byte(T_AV_INT);
                o.varint(*v);
            }
            Scalar::Double(f) => {
                o.byte(T_AV_DOUBLE);
                o.fixed64(f.to_bits());
            }
        }
    }
}

/// A scalar value, `None` for a tuple or list (an array); bails on any other type.
#[inline(always)]
unsafe fn scalar<'a>(value: Obj) -> R<Option<Scalar<'a>>> {
    let ty = ffi::Py_TYPE(value);
    if ty == addr_of_mut!(ffi::PyUnicode_Type) {
        Ok(Some(Scalar::Str(text(value)?)))
    } else if ty == addr_of_mut!(ffi::PyBool_Type) {
        Ok(Some(Scalar::Bool(value == ffi::Py_True())))
    } else if ty == addr_of_mut!(ffi::PyLong_Type) {
        Ok(Some(Scalar::Int(int64(value)?)))
    } else if ty == addr_of_mut!(ffi::PyFloat_Type) {
        Ok(Some(Scalar::Double(ffi::PyFloat_AS_DOUBLE(value))))
    } else if ty == addr_of_mut!(ffi::PyTuple_Type) || ty == addr_of_mut!(ffi::PyList_Type) {
        Ok(None)
    } else {
        Err(Bail)
    }
}

/// An `AnyValue` message body holding an array (`ArrayValue` of the items).
unsafe fn array_value(buf: &mut Vec<u8>, value: Obj, depth: u32) -> R<()> {
    if depth >= MAX_DEPTH {
        return Err(Bail);
    }
    let array = open(buf, T_AV_ARRAY, 1);
    for &item in items(value)? {
        match scalar(item)? {
            Some(s) => {
                let n = s.len();
                let mut o = Out::at_end(buf, ld_room(n));
                o.byte(T_ARRAY_VALUES);
                o.varint(n as u64);
                s.write(&mut o);
                o.commit(buf);
            }
            None => {
                let entry = open(buf, T_ARRAY_VALUES, 1);
                array_value(buf, item, depth + 1)?;
                close(buf, entry, 1);
            }
        }
    }
    close(buf, array, 1);
    Ok(())
}

/// A plain dict of `str` keys as repeated `KeyValue` fields with tag `tag`.
unsafe fn attributes(buf: &mut Vec<u8>, tag: u8, attrs: Obj) -> R<()> {
    if !is(attrs, addr_of_mut!(ffi::PyDict_Type)) {
        return Err(Bail);
    }
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: Obj = null_mut();
    let mut value: Obj = null_mut();
    while ffi::PyDict_Next(attrs, &mut pos, &mut key, &mut value) != 0 {
        let k = text(key)?;
        let key_field = 1 + varint_len(k.len() as u64) + k.len();
        match scalar(value)? {
            Some(s) => {
                // Every length is known up front: nothing to patch or move.
                let av = s.len();
                let kv = key_field + 1 + varint_len(av as u64) + av;
                let mut o = Out::at_end(buf, ld_room(kv));
                o.byte(tag);
                o.varint(kv as u64);
                o.ld(T_KV_KEY, k);
                o.byte(T_KV_VALUE);
                o.varint(av as u64);
                s.write(&mut o);
                o.commit(buf);
            }
            None => {
                let kv = open(buf, tag, 1);
                put_ld(buf, T_KV_KEY, k);
                let v = open(buf, T_KV_VALUE, 1);
                array_value(buf, value, 0)?;
                close(buf, v, 1);
                close(buf, kv, 1);
            }
        }
    }
    Ok(())
}

// --- reading a record's fields ----------------------------------------------------------------
//
// A span record's fields are read from its slots when its type allows it exactly (`layout_of`), else
// with `getattr`, which may run Python code: so that is done first, for all of the span's fields at
// once (owned references), before anything is borrowed. An event's or a link's fields are read from
// slots only (a record of another kind of type bails the span): while they are read, the span's
// values are already borrowed, and no Python code may run.

const SPAN_FIELDS: [&CStr; 13] = [
    c"trace_id",
    c"span_id",
    c"parent_span_id",
    c"name",
    c"kind",
    c"start_ns",
    c"end_ns",
    c"attributes",
    c"events",
    c"dropped_events",
    c"links",
    c"status_code",
    c"status_message",
];
const STATUS_MESSAGE: usize = 12;
const EVENT_FIELDS: [&CStr; 3] = [c"time_ns", c"name", c"attributes"];
const LINK_FIELDS: [&CStr; 3] = [c"trace_id", c"span_id", c"attributes"];
const MAX_FIELDS: usize = 13;

const SPAN: usize = 0;
const EVENT: usize = 1;
const LINK: usize = 2;

/// Where a type keeps the fields one role reads, as of one version of the type.
#[derive(Clone, Copy)]
struct Layout {
    ty: usize,
    /// The type's `tp_version_tag` when the layout was found: CPython sets a new one (0 until then)
    /// whenever the type or a base changes (a field replaced by a property, say), so a layout whose
    /// tag is not the type's current one is looked up again.
    version: u32,
    /// Byte offsets of the fields in the object; `None`: not readable from slots.
    offsets: Option<[isize; MAX_FIELDS]>,
}

/// Layouts found so far, by role (span, event, link) and type. A type in here is kept alive (one
/// reference, never dropped) so that its address cannot name another type later; only layouts in
/// here are remembered elsewhere ([`Layouts`]). Bounded: past `MAX_CACHED` types, a type's layout is
/// looked up for each record (correct, only slower).
static LAYOUTS: Mutex<Vec<(usize, Layout)>> = Mutex::new(Vec::new());
const MAX_CACHED: usize = 32;

extern "C" {
    /// CPython's own lookup of a name on a type (the MRO walk and method cache that getattr uses;
    /// exported, not in pyo3's bindings). Borrowed result, null if absent; never sets an error.
    fn _PyType_Lookup(ty: *mut ffi::PyTypeObject, name: Obj) -> Obj;
}

/// The slots of `ty` holding the fields of `role`, when reading them there is exactly what
/// `getattr` does: the type uses the generic attribute lookup, and each name resolves (first in
/// the MRO, as `_PyType_Lookup` does) to a member descriptor of an object slot (`Py_T_OBJECT_EX`:
/// an empty slot raises `AttributeError`, which bails) that applies to `ty`. msgspec Structs are
/// like that; a property, an overriding `__getattribute__` or any other descriptor gives `None`.
///
/// Runs no Python code: it looks only in namespaces whose keys are all plain `str` (comparing
/// those with a name cannot call `__eq__`).
unsafe fn layout_of(ty: *mut ffi::PyTypeObject, role: usize) -> Option<[isize; MAX_FIELDS]> {
    // Compared as addresses: an imported C function has one (were it ever not so, only speed is lost).
    if (*ty).tp_getattro.map(|f| f as usize) != Some(ffi::PyObject_GenericGetAttr as ffi::getattrofunc as usize) {
        return None;
    }
    let mro = (*ty).tp_mro;
    if mro.is_null() || !is(mro, addr_of_mut!(ffi::PyTuple_Type)) {
        return None;
    }
    for j in 0..ffi::PyTuple_GET_SIZE(mro) {
        let base = ffi::PyTuple_GET_ITEM(mro, j);
        if ffi::PyType_Check(base) == 0 {
            return None;
        }
        let dict = (*(base as *mut ffi::PyTypeObject)).tp_dict;
        if dict.is_null() || !is(dict, addr_of_mut!(ffi::PyDict_Type)) {
            return None; // a namespace it cannot see (a static type's, on some versions): no layout
        }
        let (mut pos, mut key, mut value): (ffi::Py_ssize_t, Obj, Obj) = (0, null_mut(), null_mut());
        while ffi::PyDict_Next(dict, &mut pos, &mut key, &mut value) != 0 {
            if !is(key, addr_of_mut!(ffi::PyUnicode_Type)) {
                return None;
            }
        }
    }
    let names = interned(role);
    if names.is_empty() {
        return None;
    }
    let mut offsets = [0isize; MAX_FIELDS];
    for (i, &name) in names.iter().enumerate() {
        // As getattr finds it; with an interned name, this also gives the type a version tag.
        let found = _PyType_Lookup(ty, name as Obj);
        if found.is_null() || !is(found, addr_of_mut!(ffi::PyMemberDescr_Type)) {
            return None;
        }
        let descr = found as *mut ffi::PyMemberDescrObject;
        // pyo3's binding types d_member as PyGetSetDef; CPython's is PyMemberDef.
        let member = (*descr).d_member as *const ffi::PyMemberDef;
        let owner = (*descr).d_common.d_type;
        if member.is_null()
            || (*member).type_code != ffi::Py_T_OBJECT_EX
            || (*member).flags & (ffi::Py_AUDIT_READ | ffi::Py_RELATIVE_OFFSET) != 0
            || (*member).offset < std::mem::size_of::<ffi::PyObject>() as isize
            || owner.is_null()
            || ffi::PyType_IsSubtype(ty, owner) == 0
        {
            return None;
        }
        offsets[i] = (*member).offset;
    }
    Some(offsets)
}

/// The layouts last used, by role, so that the shared table is locked only when a type changes.
#[derive(Default, Clone, Copy)]
struct Layouts {
    roles: [Option<Layout>; 3],
}

impl Layouts {
    /// The slot offsets of `ty`'s fields for `role`, if it has them.
    #[inline]
    unsafe fn offsets(&mut self, role: usize, ty: *mut ffi::PyTypeObject) -> Option<[isize; MAX_FIELDS]> {
        if let Some(l) = self.roles[role] {
            if l.ty == ty as usize && l.version == (*ty).tp_version_tag {
                return l.offsets;
            }
        }
        let (layout, kept) = Self::shared(role, ty);
        self.roles[role] = if kept { Some(layout) } else { None };
        layout.offsets
    }

    /// The layout from the shared table, found (and added) if need be; `true` if it is in the table.
    #[cold]
    unsafe fn shared(role: usize, ty: *mut ffi::PyTypeObject) -> (Layout, bool) {
        let mut table = LAYOUTS.lock().unwrap_or_else(|e| e.into_inner());
        let at = table.iter().position(|(r, l)| *r == role && l.ty == ty as usize);
        if let Some(at) = at {
            let l = table[at].1;
            if l.version == (*ty).tp_version_tag && l.version != 0 {
                return (l, true);
            }
        }
        let offsets = layout_of(ty, role);
        // Read after the lookup, which gives a type without one its version tag. Without a valid
        // tag (0: CPython has run out of them) a change could not be noticed: nothing is kept.
        let layout = Layout { ty: ty as usize, version: (*ty).tp_version_tag, offsets };
        if layout.version == 0 {
            return (Layout { offsets: None, ..layout }, false);
        }
        match at {
            Some(at) => table[at].1 = layout,
            None if table.len() < MAX_CACHED => {
                ffi::Py_INCREF(ty as Obj); // kept alive while cached: see LAYOUTS
                table.push((role, layout));
            }
            None => return (layout, false),
        }
        (layout, true)
    }
}

/// A record's fields, borrowed from its slots, or owned (from `getattr`) and released on drop.
/// A field that could not be read is null: only the span's status message may be (it is read only
/// when the span has a status), every other one bails.
struct Fields<const N: usize> {
    p: [Obj; N],
    owned: bool,
}

impl<const N: usize> Drop for Fields<N> {
    fn drop(&mut self) {
        if self.owned {
            for &p in &self.p {
                if !p.is_null() {
                    unsafe { ffi::Py_DECREF(p) };
                }
            }
        }
    }
}

/// Each role's field names as interned strings, made once (and never freed), for the `getattr` path;
/// empty if making them failed (then each read makes its own).
fn interned(role: usize) -> &'static [usize] {
    static NAMES: OnceLock<[Vec<usize>; 3]> = OnceLock::new();
    let make = |names: &[&CStr]| -> Vec<usize> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let s = unsafe { ffi::PyUnicode_InternFromString(name.as_ptr()) };
            if s.is_null() {
                unsafe { ffi::PyErr_Clear() };
                return Vec::new();
            }
            out.push(s as usize);
        }
        out
    };
    &NAMES.get_or_init(|| [make(&SPAN_FIELDS), make(&EVENT_FIELDS), make(&LINK_FIELDS)])[role]
}

/// The fields of `obj` for `role` (`names`): from slots, or with `getattr` where `may_run_python`.
/// `optional`: the index of the one that may be missing (`N`: none).
#[inline]
unsafe fn fields<const N: usize>(
    layouts: &mut Layouts,
    role: usize,
    obj: Obj,
    names: &[&CStr; N],
    may_run_python: bool,
    optional: usize,
) -> R<Fields<N>> {
    let mut f = Fields { p: [null_mut(); N], owned: false };
    if let Some(offsets) = layouts.offsets(role, ffi::Py_TYPE(obj)) {
        for (i, p) in f.p.iter_mut().enumerate() {
            // An empty slot is null: getattr would raise AttributeError.
            *p = *((obj as *mut u8).offset(offsets[i]) as *const Obj);
        }
    } else if may_run_python {
        f.owned = true;
        let interned = interned(role);
        for i in 0..N {
            f.p[i] = if interned.is_empty() {
                ffi::PyObject_GetAttrString(obj, names[i].as_ptr())
            } else {
                ffi::PyObject_GetAttr(obj, interned[i] as Obj)
            };
            if f.p[i].is_null() {
                ffi::PyErr_Clear();
            }
        }
    } else {
        return Err(Bail);
    }
    for i in 0..N {
        if f.p[i].is_null() && i != optional {
            return Err(Bail);
        }
    }
    Ok(f)
}

// --- a span -----------------------------------------------------------------------------------

unsafe fn span_body(buf: &mut Vec<u8>, layouts: &mut Layouts, span: Obj, unset: Obj) -> R<()> {
    let f = fields(layouts, SPAN, span, &SPAN_FIELDS, true, STATUS_MESSAGE)?;
    let [trace_id, span_id, parent, name, kind, start, end, attrs, events, dropped, links, code, message] = f.p;
    let (trace_id, span_id, name) = (raw(trace_id)?, raw(span_id)?, text(name)?);
    let parent = if parent == ffi::Py_None() { &[][..] } else { raw(parent)? };
    if !is_int(kind) {
        return Err(Bail);
    }
    let (kind, start, end) = (int64(kind)?, time(start)?, time(end)?);
    let room = ld_room(trace_id.len()) + ld_room(span_id.len()) + ld_room(parent.len()) + ld_room(name.len()) + 31;
    let mut o = Out::at_end(buf, room);
    o.ld(T_TRACE_ID, trace_id);
    o.ld(T_SPAN_ID, span_id);
    if !parent.is_empty() {
        o.ld(T_PARENT, parent);
    }
    o.ld(T_NAME, name);
    o.byte(T_KIND);
    o.varint(kind);
    o.byte(T_START);
    o.fixed64(start);
    o.byte(T_END);
    o.fixed64(end);
    o.commit(buf);
    attributes(buf, T_ATTR, attrs)?;
    for &event in items(events)? {
        let e = fields(layouts, EVENT, event, &EVENT_FIELDS, false, 3)?;
        let [ev_time, ev_name, ev_attrs] = e.p;
        let ev = open(buf, T_EVENT, 1);
        buf.push(T_EV_TIME);
        buf.extend_from_slice(&time(ev_time)?.to_le_bytes());
        put_ld(buf, T_EV_NAME, text(ev_name)?);
        attributes(buf, T_EV_ATTR, ev_attrs)?;
        close(buf, ev, 1);
    }
    if !is(dropped, addr_of_mut!(ffi::PyLong_Type)) {
        return Err(Bail);
    }
    let dropped = int64(dropped)?;
    if dropped != 0 {
        buf.push(T_DROPPED_EVENTS);
        put_varint(buf, dropped);
    }
    for &link in items(links)? {
        let l = fields(layouts, LINK, link, &LINK_FIELDS, false, 3)?;
        let [lk_trace, lk_span, lk_attrs] = l.p;
        let lk = open(buf, T_LINK, 1);
        put_ld(buf, T_TRACE_ID, raw(lk_trace)?);
        put_ld(buf, T_SPAN_ID, raw(lk_span)?);
        attributes(buf, T_LINK_ATTR, lk_attrs)?;
        close(buf, lk, 1);
    }
    if code != unset {
        if !is_int(code) {
            return Err(Bail);
        }
        let code = int64(code)?;
        if message.is_null() {
            return Err(Bail);
        }
        let message = text(message)?;
        let status = open(buf, T_STATUS, 1);
        if !message.is_empty() {
            put_ld(buf, T_STATUS_MSG, message);
        }
        buf.push(T_STATUS_CODE);
        put_varint(buf, code);
        close(buf, status, 1);
    }
    buf.extend_from_slice(&FLAGS);
    Ok(())
}

/// A span's `ScopeSpans.spans` field; `false` (and nothing written) where the fast path bails.
#[inline]
unsafe fn span_field(buf: &mut Vec<u8>, layouts: &mut Layouts, span: Obj, unset: Obj) -> bool {
    let mark = buf.len();
    // Two bytes for the length: most spans are 128 bytes to 16 KiB long.
    let start = open(buf, T_SCOPE_SPAN, 2);
    if span_body(buf, layouts, span, unset).is_ok() {
        close(buf, start, 2);
        return true;
    }
    buf.truncate(mark);
    false
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
    let mut layouts = Layouts::default();
    match unsafe { span_body(&mut buf, &mut layouts, span.as_ptr(), unset.as_ptr()) } {
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
    let Scratch { mut buf, mut layouts } = Scratch::take();
    let unset = unset.as_ptr();
    let seq = spans.as_ptr();
    let exact = unsafe { is(seq, addr_of_mut!(ffi::PyList_Type)) || is(seq, addr_of_mut!(ffi::PyTuple_Type)) };
    let mut encode = |span: &Bound<'py, PyAny>, buf: &mut Vec<u8>| -> PyResult<()> {
        if unsafe { span_field(buf, &mut layouts, span.as_ptr(), unset) } {
            return Ok(());
        }
        let body = fallback.call1((span,))?;
        let Ok(body) = body.cast::<PyBytes>() else {
            return Err(PyTypeError::new_err("the fallback encoder must return bytes"));
        };
        put_ld(buf, T_SCOPE_SPAN, body.as_bytes());
        Ok(())
    };
    if exact {
        // By index, each span held while it is written: the fallback may run Python code
        // that changes a list (the size is read again each time).
        let mut i = 0;
        while i < unsafe { ffi::Py_SIZE(seq) as usize } {
            let item = unsafe {
                if is(seq, addr_of_mut!(ffi::PyList_Type)) {
                    ffi::PyList_GET_ITEM(seq, i as ffi::Py_ssize_t)
                } else {
                    ffi::PyTuple_GET_ITEM(seq, i as ffi::Py_ssize_t)
                }
            };
            let span = unsafe { Bound::from_borrowed_ptr(py, item) };
            encode(&span, &mut buf)?;
            i += 1;
        }
    } else {
        for span in spans.try_iter()? {
            encode(&span?, &mut buf)?;
        }
    }
    let out = PyBytes::new(py, &buf);
    Scratch::give_back(buf, layouts);
    Ok(out)
}

/// What one call of `encode_span_fields` leaves for the next: its output buffer (grown once, not
/// allocated per call) and the layouts it used. A call takes it and gives it back; a call made
/// meanwhile (from a fallback) finds it empty and starts afresh.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    layouts: Layouts,
}

static SCRATCH: Mutex<Scratch> = Mutex::new(Scratch { buf: Vec::new(), layouts: Layouts { roles: [None; 3] } });
/// A buffer grown past this (a huge batch) is not kept.
const MAX_KEPT: usize = 1 << 20;

impl Scratch {
    #[inline]
    fn take() -> Scratch {
        std::mem::take(&mut *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()))
    }

    #[inline]
    fn give_back(mut buf: Vec<u8>, layouts: Layouts) {
        if buf.capacity() <= MAX_KEPT {
            buf.clear();
            *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()) = Scratch { buf, layouts };
        }
    }
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
