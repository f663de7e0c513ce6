//! The REST API: routes, request/response shapes, and the one place where every layer error becomes HTTP.
