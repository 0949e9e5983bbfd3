//! CloudFront through `aws-sdk-cloudfront` (the only module that knows that crate): read a
//! distribution's origins, create invalidations (backing off while CloudFront has too many in
//! flight), poll them, and count the paths used this month. Errors name the distribution.

use std::time::Duration;

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use crate::aws::Failure;

/// Longest total back-off while CloudFront reports too many invalidations in progress.
const MAX_BACKOFF_TOTAL: Duration = Duration::from_mins(10);
/// At most this many of the month's invalidations are read to count their paths.
const MAX_COUNTED: usize = 100;
/// At most this many pages of the invalidation list are read.
const MAX_PAGES: usize = 10;

/// A failed CloudFront call, naming the distribution.
#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    /// Unknown distribution id.
    #[error(
        "CloudFront distribution `{id}` does not exist\nhint: check `--distribution-id` or `[site] distribution_id` (ids look like `E2QWRUHAPOMQZL`)"
    )]
    NoSuchDistribution {
        /// The id.
        id: String,
    },
    /// The credentials may not do this.
    #[error(
        "access denied to CloudFront distribution `{id}`{}\nhint: the credentials need cloudfront:GetDistribution, cloudfront:CreateInvalidation, cloudfront:GetInvalidation and cloudfront:ListInvalidations",
        detail(message)
    )]
    AccessDenied {
        /// The id.
        id: String,
        /// CloudFront's words.
        message: String,
    },
    /// The distribution is disabled.
    #[error(
        "CloudFront distribution `{id}` is disabled: invalidating it would do nothing\nhint: enable it, or pass `--no-invalidate`"
    )]
    Disabled {
        /// The id.
        id: String,
    },
    /// Too many invalidations in flight, even after backing off.
    #[error("CloudFront distribution `{id}` still had too many invalidations in progress after {} of retries (limits: 3,000 paths and 15 wildcards in flight)", crate::time::duration(*waited))]
    TooManyInProgress {
        /// The id.
        id: String,
        /// How long skiff waited.
        waited: Duration,
    },
    /// The invalidation did not complete in time.
    #[error("invalidation `{invalidation}` of distribution `{id}` was still in progress after {}; it goes on without skiff (check with the AWS console)", crate::time::duration(*waited))]
    WaitTimeout {
        /// The distribution.
        id: String,
        /// The invalidation.
        invalidation: String,
        /// How long skiff waited.
        waited: Duration,
    },
    /// No usable credentials.
    #[error("AWS credentials were missing or refused: {message}")]
    Credentials {
        /// What the SDK said.
        message: String,
    },
    /// CloudFront could not be reached.
    #[error("could not reach CloudFront for distribution `{id}`: {message}")]
    Connection {
        /// The id.
        id: String,
        /// What failed.
        message: String,
    },
    /// Anything else.
    #[error("CloudFront refused the request for distribution `{id}`: {code}{}", detail(message))]
    Other {
        /// The id.
        id: String,
        /// CloudFront's error code.
        code: String,
        /// CloudFront's words.
        message: String,
    },
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

/// What skiff needs to know about a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// Its id.
    pub id: String,
    /// `d111111abcdef8.cloudfront.net`.
    pub domain_name: String,
    /// Whether it serves requests.
    pub enabled: bool,
    /// `(domain name, origin path)` of each origin.
    pub origins: Vec<(String, String)>,
    /// Alternate domain names.
    pub aliases: Vec<String>,
    /// Custom error responses: (error code, page path, response code).
    pub error_pages: Vec<(i32, String, String)>,
}

/// CloudFront for one account.
#[derive(Debug, Clone)]
pub struct Cdn {
    client: Client,
    first_backoff: Duration,
}

impl Cdn {
    /// Wrap a client.
    pub fn new(client: Client) -> Self {
        Self { client, first_backoff: Duration::from_secs(2) }
    }

    fn error<E>(id: &str, err: &SdkError<E, aws_sdk_cloudfront::config::http::HttpResponse>) -> CdnError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let id = id.to_string();
        match crate::aws::failure(err) {
            Failure::Credentials(message) => CdnError::Credentials { message },
            Failure::Connection(message) => CdnError::Connection { id, message },
            Failure::Service { code, message, status, .. } => match (code.as_deref(), status) {
                (Some("NoSuchDistribution"), _) | (None, Some(404)) => CdnError::NoSuchDistribution { id },
                (Some("AccessDenied"), _) | (None, Some(403)) => CdnError::AccessDenied { id, message },
                (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidClientTokenId"), _) => {
                    CdnError::Credentials { message: format!("{}: {message}", code.unwrap_or_default()) }
                }
                (code, status) => CdnError::Other {
                    id,
                    code: code.map_or_else(|| format!("HTTP {}", status.unwrap_or(0)), str::to_string),
                    message,
                },
            },
        }
    }

    /// Read a distribution: its domain, state and origins.
    pub async fn distribution(&self, id: &str) -> Result<Distribution, CdnError> {
        let out = self.client.get_distribution().id(id).send().await.map_err(|e| Self::error(id, &e))?;
        let Some(distribution) = out.distribution() else {
            return Err(CdnError::Other { id: id.into(), code: "empty response".into(), message: String::new() });
        };
        let config = distribution.distribution_config();
        let origins = config
            .and_then(|c| c.origins())
            .map(|o| {
                o.items()
                    .iter()
                    .map(|o| (o.domain_name().to_string(), o.origin_path().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Distribution {
            id: distribution.id().to_string(),
            domain_name: distribution.domain_name().to_string(),
            enabled: config.is_some_and(aws_sdk_cloudfront::types::DistributionConfig::enabled),
            origins,
            aliases: config.and_then(|c| c.aliases()).map(|a| a.items().to_vec()).unwrap_or_default(),
            error_pages: config
                .and_then(|c| c.custom_error_responses())
                .map(|e| {
                    e.items()
                        .iter()
                        .map(|r| {
                            (
                                r.error_code(),
                                r.response_page_path().unwrap_or("").to_string(),
                                r.response_code().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Create an invalidation; while CloudFront has too many in flight, back off (2 s, 4 s, …
    /// up to a minute between tries, ten minutes in all), telling `on_wait` each time.
    pub async fn invalidate(
        &self,
        id: &str,
        paths: &[String],
        reference: &str,
        on_wait: &(dyn Fn(Duration) + Sync),
    ) -> Result<String, CdnError> {
        let quantity = i32::try_from(paths.len()).unwrap_or(i32::MAX);
        let build_error = |e: aws_sdk_cloudfront::error::BuildError| CdnError::Other {
            id: id.into(),
            code: "invalid request".into(),
            message: e.to_string(),
        };
        let batch = InvalidationBatch::builder()
            .paths(Paths::builder().quantity(quantity).set_items(Some(paths.to_vec())).build().map_err(build_error)?)
            .caller_reference(reference)
            .build()
            .map_err(build_error)?;
        let mut delay = self.first_backoff;
        let mut waited = Duration::ZERO;
        loop {
            let result =
                self.client.create_invalidation().distribution_id(id).invalidation_batch(batch.clone()).send().await;
            match result {
                Ok(out) => return Ok(out.invalidation().map(|i| i.id().to_string()).unwrap_or_default()),
                Err(err) if err.code() == Some("TooManyInvalidationsInProgress") => {
                    if waited >= MAX_BACKOFF_TOTAL {
                        return Err(CdnError::TooManyInProgress { id: id.into(), waited });
                    }
                    on_wait(delay);
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_mins(1));
                }
                Err(err) => return Err(Self::error(id, &err)),
            }
        }
    }

    /// The status of an invalidation, as CloudFront spells it (`InProgress`, `Completed`).
    pub async fn invalidation_status(&self, id: &str, invalidation: &str) -> Result<String, CdnError> {
        let out = self
            .client
            .get_invalidation()
            .distribution_id(id)
            .id(invalidation)
            .send()
            .await
            .map_err(|e| Self::error(id, &e))?;
        Ok(out.invalidation().map(|i| i.status().to_string()).unwrap_or_default())
    }

    /// Paths this distribution's invalidations created since `since` (Unix seconds) used, and
    /// whether every such invalidation was counted.
    pub async fn paths_since(&self, id: &str, since: i64) -> Result<(u64, bool), CdnError> {
        let mut recent = Vec::new();
        let mut marker: Option<String> = None;
        let mut complete = true;
        let mut pages = 0;
        'pages: loop {
            let out = self
                .client
                .list_invalidations()
                .distribution_id(id)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| Self::error(id, &e))?;
            let Some(list) = out.invalidation_list() else { break };
            pages += 1;
            for summary in list.items().iter().filter(|s| s.create_time().secs() >= since) {
                if recent.len() == MAX_COUNTED {
                    complete = false;
                    break 'pages;
                }
                recent.push(summary.id().to_string());
            }
            match list.next_marker() {
                Some(next) if list.is_truncated() && pages < MAX_PAGES => marker = Some(next.to_string()),
                Some(_) if list.is_truncated() => {
                    complete = false;
                    break;
                }
                _ => break,
            }
        }
        let mut used = 0u64;
        for invalidation in recent {
            let out = self
                .client
                .get_invalidation()
                .distribution_id(id)
                .id(&invalidation)
                .send()
                .await
                .map_err(|e| Self::error(id, &e))?;
            let quantity = out
                .invalidation()
                .and_then(|i| i.invalidation_batch())
                .and_then(InvalidationBatch::paths)
                .map_or(0, Paths::quantity);
            used += u64::try_from(quantity).unwrap_or(0);
        }
        Ok((used, complete))
    }
}
