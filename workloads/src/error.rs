//! What a client can end with.

/// Errors a client can end with. A client that fails exits non-zero; its ops so far are already in
/// the history.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("librdkafka: {context}")]
    Kafka {
        context: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("writing the op stream")]
    Ops(#[from] std::io::Error),
    #[error("{0}")]
    Incomplete(String),
}

impl WorkloadError {
    pub(crate) fn kafka(
        context: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        let context = context.into();
        move |source| WorkloadError::Kafka { context, source }
    }
}
