//! encrypt / decrypt / rekey (placeholder until implemented).
use crate::error::Error;
pub fn cli_encrypt(_a: crate::cli::EncryptArgs) -> Result<i32, Error> {
    Err(Error::Usage("encrypt is not implemented yet".into()))
}
pub fn cli_decrypt(_a: crate::cli::DecryptArgs) -> Result<i32, Error> {
    Err(Error::Usage("decrypt is not implemented yet".into()))
}
pub fn cli_rekey(_a: crate::cli::RekeyArgs) -> Result<i32, Error> {
    Err(Error::Usage("rekey is not implemented yet".into()))
}
