//! The LMDB index and state store (design decision 7).
