//! libmidisock: the C ABI (being built; see issue 3).
