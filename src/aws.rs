//! The AWS SDK configuration: one `SdkConfig` from the standard credential chain (env,
//! profiles, SSO, web identity for CI OIDC, instance roles), with `--region`, `--profile` and
//! `--endpoint-url` applied, and the clients built from it. Nothing here sends a request.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where requests go and as whom.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--profile`; `None` uses the standard chain (`AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
    /// `--region` or `[site] region`; `None` uses the standard chain, then us-east-1.
    pub region: Option<String>,
    /// `--endpoint-url`; `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3` are honoured by the SDK.
    pub endpoint_url: Option<String>,
}

/// The region used when nothing sets one (and the one CloudFront, ACM for CloudFront and
/// Route 53 always use).
pub const GLOBAL_REGION: &str = "us-east-1";

/// Load the shared SDK configuration.
pub async fn sdk_config(target: &Target) -> SdkConfig {
    let region = RegionProviderChain::first_try(target.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::from_static(GLOBAL_REGION));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(
        TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).read_timeout(Duration::from_mins(2)).build(),
    );
    // Standard retries with jitter, a few more attempts than the default 3 (a publish makes
    // many requests; S3 answers 503 SlowDown while it scales a prefix). AWS_MAX_ATTEMPTS and
    // AWS_RETRY_MODE still win when set, as the SDK documents.
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(5));
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The S3 client: path-style addressing when an endpoint is configured (emulators and
/// S3-compatible stores rarely resolve `<bucket>.<host>`).
pub fn s3_client(shared: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = shared.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let config = aws_sdk_s3::config::Builder::from(shared).force_path_style(custom_endpoint).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The same client, talking to another region (S3 does not redirect across regions for us).
pub fn s3_in_region(client: &aws_sdk_s3::Client, region: &str) -> aws_sdk_s3::Client {
    let config = client.config().to_builder().region(Region::new(region.to_string())).build();
    aws_sdk_s3::Client::from_conf(config)
}
