//! HTTP plumbing: the tiny_http accept thread, handler pool, routing, problem+json, long-poll parking, limits.
