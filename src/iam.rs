//! The least-privilege IAM policy for each job (`skiff iam-policy`), from one table of the
//! AWS operations skiff calls and the IAM actions each needs. Pure: no I/O. A test runs the
//! commands through a recording proxy and fails if an operation seen on the wire is missing
//! here, so the table cannot fall behind the code.

use serde_json::{Value, json};

pub use crate::cli::Job;
use crate::config::IamSettings;

/// What an IAM statement grants the action on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The site's objects: `arn:aws:s3:::BUCKET/*`.
    Objects,
    /// The bucket itself: `arn:aws:s3:::BUCKET`.
    Bucket,
    /// The site's distribution (or every distribution without `--distribution-id`).
    Distribution,
    /// The site's router function (`skiff-<bucket>`).
    Function,
    /// Key value stores (their ids are not known in advance).
    KeyValueStores,
    /// Actions that take no resource (`List*`, `Create*`, ACM, Route 53).
    Any,
}

/// One AWS operation skiff calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The signing name of the service: `s3`, `cloudfront`, `cloudfront-keyvaluestore`,
    /// `acm`, `route53`.
    pub service: &'static str,
    /// The API operation, as the service names it (`PutObject`).
    pub name: &'static str,
    /// The IAM actions it needs.
    pub actions: &'static [&'static str],
    /// What they apply to.
    pub scope: Scope,
    /// The jobs that call it.
    pub jobs: &'static [Job],
}

const P: &[Job] = &[Job::Publish, Job::Provision];
const PUBLISH: &[Job] = &[Job::Publish];
const PROVISION: &[Job] = &[Job::Provision];
const READS: &[Job] = &[Job::Publish, Job::Provision, Job::Status];
const PROVISION_STATUS: &[Job] = &[Job::Provision, Job::Status];

const fn op(
    service: &'static str,
    name: &'static str,
    actions: &'static [&'static str],
    scope: Scope,
    jobs: &'static [Job],
) -> Operation {
    Operation { service, name, actions, scope, jobs }
}

/// Every operation skiff calls. Conditional writes need `s3:GetObject` beside
/// `s3:PutObject`/`s3:DeleteObject` (S3 User Guide, "conditional writes").
pub const OPERATIONS: &[Operation] = &[
    // S3: objects.
    op("s3", "GetObject", &["s3:GetObject"], Scope::Objects, READS),
    op("s3", "HeadObject", &["s3:GetObject"], Scope::Objects, READS),
    op("s3", "PutObject", &["s3:PutObject", "s3:GetObject"], Scope::Objects, P),
    op("s3", "CopyObject", &["s3:GetObject", "s3:PutObject"], Scope::Objects, PUBLISH),
    op("s3", "DeleteObject", &["s3:DeleteObject", "s3:GetObject"], Scope::Objects, P),
    op("s3", "DeleteObjects", &["s3:DeleteObject"], Scope::Objects, PUBLISH),
    op("s3", "CreateMultipartUpload", &["s3:PutObject"], Scope::Objects, PUBLISH),
    op("s3", "UploadPart", &["s3:PutObject"], Scope::Objects, PUBLISH),
    op("s3", "CompleteMultipartUpload", &["s3:PutObject"], Scope::Objects, PUBLISH),
    op("s3", "AbortMultipartUpload", &["s3:AbortMultipartUpload"], Scope::Objects, PUBLISH),
    // S3: the bucket.
    op("s3", "ListObjectsV2", &["s3:ListBucket"], Scope::Bucket, READS),
    op("s3", "HeadBucket", &["s3:ListBucket"], Scope::Bucket, READS),
    op("s3", "CreateBucket", &["s3:CreateBucket"], Scope::Bucket, PROVISION),
    op("s3", "GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"], Scope::Bucket, PROVISION),
    op("s3", "PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"], Scope::Bucket, PROVISION),
    op("s3", "GetBucketOwnershipControls", &["s3:GetBucketOwnershipControls"], Scope::Bucket, PROVISION),
    op("s3", "PutBucketOwnershipControls", &["s3:PutBucketOwnershipControls"], Scope::Bucket, PROVISION),
    op("s3", "GetBucketEncryption", &["s3:GetEncryptionConfiguration"], Scope::Bucket, PROVISION),
    op("s3", "PutBucketEncryption", &["s3:PutEncryptionConfiguration"], Scope::Bucket, PROVISION),
    op("s3", "GetBucketLifecycleConfiguration", &["s3:GetLifecycleConfiguration"], Scope::Bucket, PROVISION),
    op("s3", "PutBucketLifecycleConfiguration", &["s3:PutLifecycleConfiguration"], Scope::Bucket, PROVISION),
    op("s3", "GetBucketTagging", &["s3:GetBucketTagging"], Scope::Bucket, PROVISION),
    op("s3", "PutBucketTagging", &["s3:PutBucketTagging"], Scope::Bucket, PROVISION),
    op("s3", "GetBucketPolicy", &["s3:GetBucketPolicy"], Scope::Bucket, PROVISION),
    op("s3", "PutBucketPolicy", &["s3:PutBucketPolicy"], Scope::Bucket, PROVISION),
    // CloudFront: the distribution and its invalidations.
    op("cloudfront", "GetDistribution", &["cloudfront:GetDistribution"], Scope::Distribution, READS),
    op("cloudfront", "UpdateDistribution", &["cloudfront:UpdateDistribution"], Scope::Distribution, PROVISION),
    op(
        "cloudfront",
        "CreateDistributionWithTags",
        &["cloudfront:CreateDistribution", "cloudfront:TagResource"],
        Scope::Any,
        PROVISION,
    ),
    op("cloudfront", "ListDistributions", &["cloudfront:ListDistributions"], Scope::Any, PROVISION),
    op("cloudfront", "ListTagsForResource", &["cloudfront:ListTagsForResource"], Scope::Distribution, PROVISION),
    op("cloudfront", "CreateInvalidation", &["cloudfront:CreateInvalidation"], Scope::Distribution, PUBLISH),
    op("cloudfront", "GetInvalidation", &["cloudfront:GetInvalidation"], Scope::Distribution, PUBLISH),
    op("cloudfront", "ListInvalidations", &["cloudfront:ListInvalidations"], Scope::Distribution, PUBLISH),
    // CloudFront: origin access control.
    op("cloudfront", "CreateOriginAccessControl", &["cloudfront:CreateOriginAccessControl"], Scope::Any, PROVISION),
    op("cloudfront", "GetOriginAccessControl", &["cloudfront:GetOriginAccessControl"], Scope::Any, PROVISION),
    op("cloudfront", "UpdateOriginAccessControl", &["cloudfront:UpdateOriginAccessControl"], Scope::Any, PROVISION),
    op("cloudfront", "ListOriginAccessControls", &["cloudfront:ListOriginAccessControls"], Scope::Any, PROVISION),
    // CloudFront Functions: the router.
    op("cloudfront", "CreateFunction", &["cloudfront:CreateFunction"], Scope::Function, PROVISION),
    op("cloudfront", "DescribeFunction", &["cloudfront:DescribeFunction"], Scope::Function, PROVISION_STATUS),
    op("cloudfront", "GetFunction", &["cloudfront:GetFunction"], Scope::Function, PROVISION),
    op("cloudfront", "UpdateFunction", &["cloudfront:UpdateFunction"], Scope::Function, PROVISION),
    op("cloudfront", "PublishFunction", &["cloudfront:PublishFunction"], Scope::Function, PROVISION),
    // CloudFront KeyValueStore: the control plane, then the data plane (live deploys, redirects).
    op("cloudfront", "CreateKeyValueStore", &["cloudfront:CreateKeyValueStore"], Scope::Any, PROVISION),
    op("cloudfront", "DescribeKeyValueStore", &["cloudfront:DescribeKeyValueStore"], Scope::Any, PROVISION_STATUS),
    op(
        "cloudfront-keyvaluestore",
        "DescribeKeyValueStore",
        &["cloudfront-keyvaluestore:DescribeKeyValueStore"],
        Scope::KeyValueStores,
        P,
    ),
    op("cloudfront-keyvaluestore", "ListKeys", &["cloudfront-keyvaluestore:ListKeys"], Scope::KeyValueStores, READS),
    op("cloudfront-keyvaluestore", "GetKey", &["cloudfront-keyvaluestore:GetKey"], Scope::KeyValueStores, PUBLISH),
    op("cloudfront-keyvaluestore", "UpdateKeys", &["cloudfront-keyvaluestore:UpdateKeys"], Scope::KeyValueStores, P),
    // ACM (us-east-1) and Route 53.
    op("acm", "ListCertificates", &["acm:ListCertificates"], Scope::Any, PROVISION),
    op("acm", "DescribeCertificate", &["acm:DescribeCertificate"], Scope::Any, PROVISION_STATUS),
    op("acm", "RequestCertificate", &["acm:RequestCertificate", "acm:AddTagsToCertificate"], Scope::Any, PROVISION),
    op("route53", "ListHostedZonesByName", &["route53:ListHostedZonesByName"], Scope::Any, PROVISION_STATUS),
    op("route53", "ListResourceRecordSets", &["route53:ListResourceRecordSets"], Scope::Any, PROVISION_STATUS),
    op("route53", "ChangeResourceRecordSets", &["route53:ChangeResourceRecordSets"], Scope::Any, PROVISION),
];

/// The operation named `name` of `service`, if skiff calls it.
pub fn operation(service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.service == service && o.name == name)
}

/// Whether `job` may call `operation`.
pub fn allows(job: Job, operation: &Operation) -> bool {
    job == Job::All || operation.jobs.contains(&job)
}

fn arns(scope: Scope, resources: &IamSettings) -> Vec<String> {
    let bucket = resources.bucket.as_deref().unwrap_or("*");
    match scope {
        Scope::Objects => vec![format!("arn:aws:s3:::{bucket}/*")],
        Scope::Bucket => vec![format!("arn:aws:s3:::{bucket}")],
        Scope::Distribution => {
            vec![format!("arn:aws:cloudfront::*:distribution/{}", resources.distribution_id.as_deref().unwrap_or("*"))]
        }
        Scope::Function => match &resources.bucket {
            Some(bucket) => vec![format!("arn:aws:cloudfront::*:function/{}", crate::aws::resource_name(bucket))],
            None => vec!["arn:aws:cloudfront::*:function/skiff-*".to_string()],
        },
        Scope::KeyValueStores => vec!["arn:aws:cloudfront::*:key-value-store/*".to_string()],
        Scope::Any => vec!["*".to_string()],
    }
}

/// The policy document for `job`: one statement per kind of resource, actions sorted.
pub fn policy(job: Job, resources: &IamSettings) -> Value {
    let scopes = [
        (Scope::Objects, "SkiffObjects"),
        (Scope::Bucket, "SkiffBucket"),
        (Scope::Distribution, "SkiffDistribution"),
        (Scope::Function, "SkiffRouterFunction"),
        (Scope::KeyValueStores, "SkiffKeyValueStores"),
        (Scope::Any, "SkiffAccountWide"),
    ];
    let mut statements = Vec::new();
    for (scope, sid) in scopes {
        let mut actions: Vec<&str> = OPERATIONS
            .iter()
            .filter(|o| o.scope == scope && allows(job, o))
            .flat_map(|o| o.actions.iter().copied())
            .collect();
        actions.sort_unstable();
        actions.dedup();
        if actions.is_empty() {
            continue;
        }
        statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": arns(scope, resources),
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(policy: &Value) -> Vec<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn the_publish_policy_is_narrow() {
        let resources = IamSettings { bucket: Some("site".into()), distribution_id: Some("E1".into()) };
        let publish = policy(Job::Publish, &resources);
        let granted = actions(&publish);
        for needed in ["s3:PutObject", "s3:AbortMultipartUpload", "cloudfront-keyvaluestore:UpdateKeys"] {
            assert!(granted.iter().any(|a| a == needed), "{needed} missing: {publish}");
        }
        for never in
            ["s3:PutBucketPolicy", "cloudfront:UpdateDistribution", "acm:RequestCertificate", "s3:CreateBucket"]
        {
            assert!(!granted.iter().any(|a| a == never), "{never} granted: {publish}");
        }
        let text = publish.to_string();
        assert!(text.contains("arn:aws:s3:::site/*") && text.contains("distribution/E1"), "{text}");
    }

    #[test]
    fn status_only_reads_and_all_is_everything() {
        let status = actions(&policy(Job::Status, &IamSettings::default()));
        assert!(
            status.iter().all(|a| ["Get", "List", "Describe", "Head"].iter().any(|verb| a
                .split(':')
                .nth(1)
                .unwrap()
                .starts_with(verb))),
            "{status:?}"
        );
        assert!(status.iter().any(|a| a == "acm:DescribeCertificate"), "{status:?}");
        let mut all = actions(&policy(Job::All, &IamSettings::default()));
        all.sort();
        all.dedup();
        let mut table: Vec<String> =
            OPERATIONS.iter().flat_map(|o| o.actions.iter().map(ToString::to_string)).collect();
        table.sort();
        table.dedup();
        assert_eq!(all, table);
    }
}
