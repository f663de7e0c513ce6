//! (being built: see issue 2)
