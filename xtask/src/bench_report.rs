//! Not built yet: see the open issues. Fails loudly rather than pretending.

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("this command is not built yet".into())
}
