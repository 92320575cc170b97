//! (in-process session tests: being written)
