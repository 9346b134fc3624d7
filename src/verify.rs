//! `stanctl store verify` (placeholder until implemented).
use crate::error::Error;
pub fn cli(_a: crate::cli::VerifyArgs) -> Result<i32, Error> {
    Err(Error::Usage("verify is not implemented yet".into()))
}
