//! Access control (issue 5): API keys, scopes, rate limits, audit.
