//! STUB — being implemented.
