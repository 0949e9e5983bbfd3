//! The site's S3 bucket as a resource: what `skiff provision` observes of it (the settings
//! skiff owns and the policy) and the control-plane calls that create and secure it. Objects
//! are `store`'s; this module never reads or writes one.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration,
    ExpirationStatus, LifecycleRule, LifecycleRuleFilter, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};

use crate::aws::{self, TAG, call_error};

/// The id of skiff's lifecycle rule.
const LIFECYCLE_RULE: &str = "skiff-abort-incomplete-uploads";
/// Days after which an unfinished multipart upload is aborted.
const ABORT_AFTER_DAYS: i32 = 1;

/// The bucket settings skiff owns, as they must be.
pub fn bucket_settings(bucket: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("block public access", "all on".to_string()),
        ("object ownership", "BucketOwnerEnforced".to_string()),
        ("default encryption", "on".to_string()),
        ("tag skiff:site", bucket.to_string()),
        ("abort incomplete uploads", "after 1 day".to_string()),
    ])
}

/// The bucket as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bucket {
    /// There is none.
    Missing,
    /// It exists.
    Present {
        /// Its settings that skiff owns, as text.
        settings: BTreeMap<&'static str, String>,
        /// Its policy, parsed.
        policy: Option<serde_json::Value>,
    },
}

type SdkError<E> = aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

fn s3_error<E>(bucket: &str, action: &str) -> impl Fn(SdkError<E>) -> anyhow::Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let resource = format!("bucket `{bucket}`");
    let action = action.to_string();
    move |e| call_error(&action, &resource, &e)
}

/// Whether an S3 error says the thing asked about does not exist.
fn absent<E>(err: &SdkError<E>, codes: &[&str]) -> bool
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    aws::code(err).is_some_and(|c| codes.contains(&c.as_str())) || aws::failure(err).status() == Some(404)
}

/// The bucket's owned settings and policy.
pub async fn observe(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Bucket> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if aws::failure(&e).status() == Some(404) => return Ok(Bucket::Missing),
        Err(e) if aws::failure(&e).status() == Some(403) => bail!(
            "bucket `{bucket}` exists but these credentials may not use it (it may belong to another AWS account)\nhint: bucket names are global: choose another `[site] bucket`, or use the account that owns it"
        ),
        Err(e) => return Err(call_error("s3:ListBucket", &format!("bucket `{bucket}`"), &e)),
    }
    let mut settings = BTreeMap::new();
    let block = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(got) => got.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if absent(&e, &["NoSuchPublicAccessBlockConfiguration"]) => false,
        Err(e) => return Err(s3_error(bucket, "s3:GetBucketPublicAccessBlock")(e)),
    };
    settings.insert("block public access", if block { "all on" } else { "not all on" }.to_string());
    let ownership = match s3.get_bucket_ownership_controls().bucket(bucket).send().await {
        Ok(got) => got
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_string())
            .unwrap_or_default(),
        Err(e) if absent(&e, &["OwnershipControlsNotFoundError"]) => String::new(),
        Err(e) => return Err(s3_error(bucket, "s3:GetBucketOwnershipControls")(e)),
    };
    settings.insert("object ownership", ownership);
    let encrypted = match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(got) => got.server_side_encryption_configuration().is_some_and(|c| !c.rules().is_empty()),
        Err(e) if absent(&e, &["ServerSideEncryptionConfigurationNotFoundError"]) => false,
        Err(e) => return Err(s3_error(bucket, "s3:GetEncryptionConfiguration")(e)),
    };
    settings.insert("default encryption", if encrypted { "on" } else { "off" }.to_string());
    let tag = match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(got) => got.tag_set().iter().find(|t| t.key() == TAG).map(|t| t.value().to_string()).unwrap_or_default(),
        Err(e) if absent(&e, &["NoSuchTagSet", "NoSuchTagSetError"]) => String::new(),
        Err(e) => return Err(s3_error(bucket, "s3:GetBucketTagging")(e)),
    };
    settings.insert("tag skiff:site", tag);
    // Multipart uploads of a run killed outright are billed until aborted: a lifecycle rule
    // cleans them up.
    let aborts = match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(got) => got.rules().iter().any(|r| {
            r.status() == &ExpirationStatus::Enabled
                && r.abort_incomplete_multipart_upload().and_then(AbortIncompleteMultipartUpload::days_after_initiation)
                    == Some(ABORT_AFTER_DAYS)
        }),
        Err(e) if absent(&e, &["NoSuchLifecycleConfiguration"]) => false,
        Err(e) => return Err(s3_error(bucket, "s3:GetLifecycleConfiguration")(e)),
    };
    settings.insert("abort incomplete uploads", if aborts { "after 1 day" } else { "off" }.to_string());
    let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(got) => got.policy().and_then(|p| serde_json::from_str(p).ok()),
        Err(e) if absent(&e, &["NoSuchBucketPolicy"]) => None,
        Err(e) => return Err(s3_error(bucket, "s3:GetBucketPolicy")(e)),
    };
    Ok(Bucket::Present { settings, policy })
}

/// Create the bucket in `region` (one already ours is fine).
pub async fn create(s3: &aws_sdk_s3::Client, bucket: &str, region: &str) -> Result<()> {
    let mut request = s3.create_bucket().bucket(bucket);
    if region != aws::GLOBAL_REGION {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if aws::code(&e).as_deref() == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) if aws::code(&e).as_deref() == Some("BucketAlreadyExists") => bail!(
            "bucket name `{bucket}` is taken by another AWS account\nhint: bucket names are global: choose another `[site] bucket`"
        ),
        Err(e) => return Err(call_error("s3:CreateBucket", &format!("bucket `{bucket}`"), &e)),
    }
    Ok(())
}

/// Put one owned setting (a name of [`bucket_settings`]) the way skiff wants it.
pub async fn secure(s3: &aws_sdk_s3::Client, bucket: &str, setting: &str) -> Result<()> {
    match setting {
        "block public access" => {
            let config = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(config)
                .send()
                .await
                .map_err(s3_error(bucket, "s3:PutBucketPublicAccessBlock"))?;
        }
        "object ownership" => {
            let rule =
                OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build()?;
            s3.put_bucket_ownership_controls()
                .bucket(bucket)
                .ownership_controls(OwnershipControls::builder().rules(rule).build()?)
                .send()
                .await
                .map_err(s3_error(bucket, "s3:PutBucketOwnershipControls"))?;
        }
        "abort incomplete uploads" => {
            // Added to the bucket's other lifecycle rules, which stay.
            let mut rules: Vec<LifecycleRule> =
                match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
                    Ok(got) => got.rules().iter().filter(|r| r.id() != Some(LIFECYCLE_RULE)).cloned().collect(),
                    Err(_) => Vec::new(),
                };
            rules.push(
                LifecycleRule::builder()
                    .id(LIFECYCLE_RULE)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .abort_incomplete_multipart_upload(
                        AbortIncompleteMultipartUpload::builder().days_after_initiation(ABORT_AFTER_DAYS).build(),
                    )
                    .build()?,
            );
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build()?)
                .send()
                .await
                .map_err(s3_error(bucket, "s3:PutLifecycleConfiguration"))?;
        }
        "default encryption" => {
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build()?,
                )
                .build();
            s3.put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(ServerSideEncryptionConfiguration::builder().rules(rule).build()?)
                .send()
                .await
                .map_err(s3_error(bucket, "s3:PutEncryptionConfiguration"))?;
        }
        _ => {
            // The tag, added to whatever tags the bucket has.
            let mut tags: Vec<Tag> = match s3.get_bucket_tagging().bucket(bucket).send().await {
                Ok(got) => got.tag_set().iter().filter(|t| t.key() != TAG).cloned().collect(),
                Err(_) => Vec::new(),
            };
            tags.push(Tag::builder().key(TAG).value(bucket).build()?);
            s3.put_bucket_tagging()
                .bucket(bucket)
                .tagging(Tagging::builder().set_tag_set(Some(tags)).build()?)
                .send()
                .await
                .map_err(s3_error(bucket, "s3:PutBucketTagging"))?;
        }
    }
    Ok(())
}

/// Replace the bucket's policy with `policy` (JSON).
pub async fn put_policy(s3: &aws_sdk_s3::Client, bucket: &str, policy: &str) -> Result<()> {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map_err(s3_error(bucket, "s3:PutBucketPolicy"))?;
    Ok(())
}
