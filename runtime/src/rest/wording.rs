//! Kafka Connect's words in REST answers: the names of states and the
//! messages of errors, as its REST API spells them (clients and scripts
//! written for Kafka Connect match on them). The herder answers in types;
//! only this file turns them into Kafka Connect's text.

use super::ApiError;
use crate::herder::Error;
use axum::http::StatusCode;

impl From<Error> for ApiError {
    /// Kafka Connect's status code and message for each kind of error.
    fn from(e: Error) -> ApiError {
        let (status, message) = match e {
            Error::ConnectorNotFound(name) => {
                (StatusCode::NOT_FOUND, format!("Connector {name} not found"))
            }
            Error::ConnectorExists(name) => (
                StatusCode::CONFLICT,
                format!("Connector {name} already exists"),
            ),
            Error::UnknownTask { connector, task } => (
                StatusCode::NOT_FOUND,
                format!("Unknown task: {connector}-{task}"),
            ),
            Error::NoTaskStatus { connector, task } => (
                StatusCode::NOT_FOUND,
                format!("No status found for task {connector}-{task}"),
            ),
            Error::UnknownPlugin(name) => {
                (StatusCode::NOT_FOUND, format!("Unknown plugin {name}."))
            }
            // Already Kafka Connect's words (a stored config's trace too).
            e @ Error::InvalidConfig(_) => (StatusCode::BAD_REQUEST, e.to_string()),
            Error::NotStopped(name) => (
                StatusCode::BAD_REQUEST,
                format!(
                    "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
                ),
            ),
            Error::NameMismatch { config, request } => (
                StatusCode::BAD_REQUEST,
                format!(
                    "`name`: connector name configuration ({config}) doesn't match connector name in the URL ({request})"
                ),
            ),
            Error::ClassMismatch { class, plugin } => (
                StatusCode::BAD_REQUEST,
                format!(
                    "`connector.class`: included connector type {class} does not match request type {plugin}"
                ),
            ),
            Error::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Error::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        ApiError::new(status, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::herder::ConnectorState;

    #[test]
    fn errors_read_as_kafka_connect_writes_them() {
        let cases = [
            (
                Error::ConnectorNotFound("x".into()),
                404,
                "Connector x not found",
            ),
            (
                Error::ConnectorExists("x".into()),
                409,
                "Connector x already exists",
            ),
            (
                Error::UnknownTask {
                    connector: "x".into(),
                    task: 3,
                },
                404,
                "Unknown task: x-3",
            ),
            (
                Error::NoTaskStatus {
                    connector: "x".into(),
                    task: 3,
                },
                404,
                "No status found for task x-3",
            ),
            (Error::UnknownPlugin("p".into()), 404, "Unknown plugin p."),
            (
                Error::InvalidConfig(vec!["`file`: is required".into(), "validate crashed".into()]),
                400,
                "Connector configuration is invalid and contains the following 2 error(s):\n`file`: is required\nvalidate crashed\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
            ),
            (Error::Internal("disk full".into()), 500, "disk full"),
        ];
        for (error, code, message) in cases {
            let e = ApiError::from(error);
            assert_eq!((e.status.as_u16(), e.message.as_str()), (code, message));
        }
        assert_eq!(
            ConnectorState::Failed("poll: crashed".into()).name(),
            "FAILED"
        );
    }
}
