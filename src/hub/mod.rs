//! The hub (issue 4): configuration, database, job state machine, printer threads, recovery, retention.
