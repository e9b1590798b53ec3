//! The midisock DAW plugin (being built; see issue 4).
