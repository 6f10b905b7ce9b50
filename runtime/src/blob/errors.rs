//! Sorting aws-sdk-s3 errors into the contract's kinds, with messages that
//! say what was asked of which bucket and key.

use super::BlobError;
use aws_sdk_s3::config::http::HttpResponse as Response;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The HTTP status of a failed call, when the service answered.
pub fn status<E>(e: &SdkError<E, Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The kind of `e`, from the service's error code, else its HTTP status,
/// else the transport failure. `what` is the call (`get`), `at` the store,
/// bucket and key.
pub fn classify<E>(e: SdkError<E, Response>, what: &str, at: &str) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status(&e);
    let code = e.code().map(str::to_owned);
    let text = match (&code, e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => match status {
            Some(s) => format!("HTTP {s}"),
            None => format!("{}", DisplayErrorContext(&e)),
        },
    };
    let message = format!("{what} {at}: {text}");
    match (&e, code.as_deref(), status) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => {
            BlobError::Unavailable(message)
        }
        (_, Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem"), _) => {
            BlobError::AccessDenied(message)
        }
        (
            _,
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired",
            ),
            _,
        ) => BlobError::InvalidCredentials(message),
        (_, Some("NoSuchBucket"), _) => BlobError::NoSuchBucket(message),
        (_, Some("NoSuchKey" | "NotFound"), _) | (_, None, Some(404)) => {
            BlobError::NotFound(message)
        }
        (_, Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"), _) => {
            BlobError::Unavailable(message)
        }
        (_, None, Some(403)) => BlobError::AccessDenied(message),
        (_, _, Some(s)) if s >= 500 => BlobError::Unavailable(message),
        _ => BlobError::Other(message),
    }
}
