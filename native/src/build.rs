//! Build script: lets the crate see pyo3's cfgs for the interpreter it is built for (`Py_3_14`: the
//! string internals it reads directly before that version).
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
