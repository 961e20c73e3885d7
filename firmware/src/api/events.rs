//! STUB — being implemented: the events API (list, thumbnail, SSE).
