//! `skiff provision` and `skiff status` against the emulator and the test double
//! (`scripts/double.py`: CloudFront Functions, the KVS data plane, and distribution configs
//! as sent), asserting on what the emulator holds afterwards.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_cloudfront::types::MinimumProtocolVersion;

use crate::harness::proxy::Proxy;
use crate::harness::{ACCESS_KEY, SECRET_KEY, client_for, endpoint, runtime, skiff_at};

/// The AWS clients a test reads the emulator with.
pub struct Aws {
    pub s3: aws_sdk_s3::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
}

pub fn aws() -> Aws {
    aws_at(&endpoint())
}

/// Clients for `endpoint`: the double (`endpoint()`) or moto behind it (`moto_endpoint()`).
pub fn aws_at(endpoint: &str) -> Aws {
    let shared = runtime().block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .load(),
    );
    Aws {
        s3: client_for(endpoint),
        cloudfront: aws_sdk_cloudfront::Client::new(&shared),
        acm: aws_sdk_acm::Client::new(&shared),
        route53: aws_sdk_route53::Client::new(&shared),
    }
}

/// A site to provision: a unique domain with its hosted zone, a bucket name (not created)
/// and a skiff.toml in a temporary directory.
pub struct Site {
    pub domain: String,
    pub bucket: String,
    pub zone_id: String,
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let label: String = format!("t{}-{n}-{test}", std::process::id())
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let zone = format!("{label}.test");
        let created = runtime()
            .block_on(aws().route53.create_hosted_zone().name(&zone).caller_reference(&label).send())
            .expect("create the hosted zone");
        let zone_id = created.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
        let site = Self::without_zone(&label, &zone);
        Self { zone_id, ..site }
    }

    pub fn without_zone(label: &str, zone: &str) -> Self {
        let site = Self {
            domain: zone.to_string(),
            bucket: format!("{label}-site"),
            zone_id: String::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        site.configure("");
        site
    }

    /// Write skiff.toml, with `extra` appended.
    pub fn configure(&self, extra: &str) {
        let text = format!(
            "[site]\ndir = \"public\"\nbucket = \"{bucket}\"\nregion = \"eu-west-1\"\n\n[domain]\nname = \"{domain}\"\naliases = [\"www.{domain}\"]\npreviews = \"preview.{domain}\"\n\n[[redirects]]\nfrom = \"/old/\"\nto = \"/new/\"\nstatus = 301\n{extra}",
            bucket = self.bucket,
            domain = self.domain
        );
        std::fs::write(self.dir.path().join("skiff.toml"), text).unwrap();
    }

    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = vec![self.domain.clone(), format!("www.{}", self.domain), format!("*.preview.{}", self.domain)];
        hosts.sort();
        hosts
    }

    pub fn skiff(&self, args: &[&str]) -> crate::harness::Run {
        self.skiff_at(&endpoint(), args)
    }

    pub fn skiff_at(&self, endpoint: &str, args: &[&str]) -> crate::harness::Run {
        let mut command = crate::harness::command_at(endpoint, args);
        command.current_dir(self.dir.path()).env("SKIFF_POLL_INTERVAL_MS", "100");
        crate::harness::finish(command.output().expect("run skiff"))
    }

    pub fn state(&self) -> serde_json::Value {
        let got = runtime()
            .block_on(aws().s3.get_object().bucket(&self.bucket).key("_skiff/state.json").send())
            .expect("state.json exists");
        let bytes = runtime().block_on(got.body.collect()).unwrap().into_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    pub fn distribution_id(&self) -> String {
        self.state()["resources"]["distribution_id"].as_str().unwrap().to_string()
    }
}

/// What the router serves for production: the files of the deploy the KVS names (and, for
/// a delta deploy, of its base where the router looks there), key → bytes (relative to the
/// deploy).
pub fn served(site: &Site) -> std::collections::BTreeMap<String, Vec<u8>> {
    let arn = site.state()["resources"]["kvs_arn"].as_str().unwrap().to_string();
    let kvs = kvs_contents()[&arn].clone();
    let id = kvs["production"].as_str().unwrap().to_string();
    let table: serde_json::Value =
        kvs[format!("routes:{id}")].as_str().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let mut prefixes = vec![format!("_deploys/production/{id}/")];
    prefixes.extend(table["b"].as_str().map(|base| format!("_deploys/{base}/")));
    let client = client_for(&endpoint());
    runtime().block_on(async {
        let mut objects = std::collections::BTreeMap::new();
        for prefix in &prefixes {
            let mut pages = client.list_objects_v2().bucket(&site.bucket).prefix(prefix).into_paginator().send();
            while let Some(page) = pages.next().await {
                for object in page.unwrap().contents() {
                    objects.insert(object.key().unwrap().to_string(), prefix.clone());
                }
            }
        }
        let mut out = std::collections::BTreeMap::new();
        for (object, prefix) in &objects {
            let key = object.strip_prefix(prefix.as_str()).unwrap();
            if crate::harness::invariants::location(&kvs, "production", &id, key) != *object {
                continue;
            }
            let got = client.get_object().bucket(&site.bucket).key(object).send().await.unwrap();
            out.insert(key.to_string(), got.body.collect().await.unwrap().into_bytes().to_vec());
        }
        out
    })
}

/// The KVS contents the double holds: ARN → key → value.
pub fn kvs_contents() -> serde_json::Value {
    let url = endpoint();
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /__double/kvs HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the double's /__double/kvs is not JSON ({e}): {response}"))
}

pub fn steps(run: &crate::harness::Run) -> Vec<String> {
    run.json()["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_first_provision_creates_everything_with_skiffs_settings_and_a_second_changes_nothing() {
    let site = Site::new("first");
    let run = site.skiff(&["provision", "--json"]).success();
    assert_eq!(
        steps(&run),
        [
            "create-bucket",
            "secure-bucket",
            "request-certificate",
            "add-validation-records",
            "wait-for-certificate",
            "create-key-value-store",
            "write-redirects",
            "create-function",
            "publish-function",
            "create-origin-access-control",
            "create-distribution",
            "put-bucket-policy",
            "upsert-dns-records",
        ]
    );
    let aws = aws();
    let state = site.state();
    let resources = &state["resources"];
    assert_eq!(state["bucket"], site.bucket.as_str());
    assert_eq!(state["region"], "eu-west-1");
    assert_eq!(resources["zone_id"], site.zone_id.as_str());

    // The bucket: private, owner-enforced, encrypted, tagged, in its region.
    runtime().block_on(async {
        let location = aws.s3.get_bucket_location().bucket(&site.bucket).send().await.unwrap();
        assert_eq!(location.location_constraint().unwrap().as_str(), "eu-west-1");
        let block = aws.s3.get_public_access_block().bucket(&site.bucket).send().await.unwrap();
        let block = block.public_access_block_configuration().unwrap();
        assert_eq!(
            [
                block.block_public_acls(),
                block.ignore_public_acls(),
                block.block_public_policy(),
                block.restrict_public_buckets()
            ],
            [Some(true); 4]
        );
        let ownership = aws.s3.get_bucket_ownership_controls().bucket(&site.bucket).send().await.unwrap();
        assert_eq!(
            ownership.ownership_controls().unwrap().rules()[0].object_ownership().as_str(),
            "BucketOwnerEnforced"
        );
        aws.s3.get_bucket_encryption().bucket(&site.bucket).send().await.expect("default encryption is on");
        let tags = aws.s3.get_bucket_tagging().bucket(&site.bucket).send().await.unwrap();
        assert!(tags.tag_set().iter().any(|t| t.key() == "skiff:site" && t.value() == site.bucket));
        let lifecycle = aws.s3.get_bucket_lifecycle_configuration().bucket(&site.bucket).send().await.unwrap();
        assert!(
            lifecycle.rules().iter().any(|r| r
                .abort_incomplete_multipart_upload()
                .and_then(aws_sdk_s3::types::AbortIncompleteMultipartUpload::days_after_initiation)
                == Some(1)),
            "unfinished multipart uploads are aborted after a day"
        );
    });

    // The certificate, in us-east-1, for every name, with its validation records in the zone.
    let certificate_arn = resources["certificate_arn"].as_str().unwrap().to_string();
    let id = site.distribution_id();
    assert!(certificate_arn.starts_with("arn:aws:acm:us-east-1:"), "{certificate_arn}");
    runtime().block_on(async {
        let described = aws.acm.describe_certificate().certificate_arn(&certificate_arn).send().await.unwrap();
        let detail = described.certificate().unwrap();
        let mut names = detail.subject_alternative_names().to_vec();
        names.sort();
        assert_eq!(names, site.hosts());
        let records = aws.route53.list_resource_record_sets().hosted_zone_id(&site.zone_id).send().await.unwrap();
        let sets = records.resource_record_sets();
        for option in detail.domain_validation_options() {
            let record = option.resource_record().unwrap();
            assert!(
                sets.iter().any(|s| s.name() == record.name() && s.r#type().as_str() == "CNAME"),
                "validation record {} is in the zone",
                record.name()
            );
        }
        // Alias A and AAAA for every name, to the distribution.
        let distribution = aws.cloudfront.get_distribution().id(&id).send().await.unwrap();
        let domain = distribution.distribution().unwrap().domain_name().to_string();
        for host in site.hosts() {
            for kind in ["A", "AAAA"] {
                let set = sets
                    .iter()
                    .find(|s| {
                        s.name().trim_end_matches('.').replace("\\052", "*") == host && s.r#type().as_str() == kind
                    })
                    .unwrap_or_else(|| panic!("{host} {kind} record"));
                let alias = set.alias_target().unwrap();
                assert_eq!(alias.hosted_zone_id(), "Z2FDTNDATAQYW2");
                assert_eq!(alias.dns_name().trim_end_matches('.'), domain);
            }
        }
    });

    // The distribution, as configured.
    runtime().block_on(async {
        let got = aws.cloudfront.get_distribution_config().id(&id).send().await.unwrap();
        let config = got.distribution_config().unwrap();
        let mut aliases = config.aliases().unwrap().items().to_vec();
        aliases.sort();
        assert_eq!(aliases, site.hosts());
        let certificate = config.viewer_certificate().unwrap();
        assert_eq!(certificate.acm_certificate_arn(), Some(certificate_arn.as_str()));
        assert_eq!(certificate.ssl_support_method().unwrap().as_str(), "sni-only");
        assert_eq!(certificate.minimum_protocol_version(), Some(&MinimumProtocolVersion::TlSv122021));
        assert_eq!(config.http_version().unwrap().as_str(), "http2and3");
        assert_eq!(config.is_ipv6_enabled(), Some(true));
        assert_eq!(config.default_root_object(), Some("index.html"));
        let origin = &config.origins().unwrap().items()[0];
        assert_eq!(origin.domain_name(), format!("{}.s3.eu-west-1.amazonaws.com", site.bucket));
        assert_eq!(origin.origin_access_control_id(), resources["oac_id"].as_str());
        let behavior = config.default_cache_behavior().unwrap();
        assert_eq!(behavior.viewer_protocol_policy().as_str(), "redirect-to-https");
        assert_eq!(behavior.cache_policy_id(), Some("658327ea-f89d-4fab-a63d-7e88639e58f6"));
        assert_eq!(behavior.response_headers_policy_id(), Some("67f7725c-6f97-4210-82d7-5512b31e9d03"));
        assert_eq!(behavior.compress(), Some(true));
        let mut events: Vec<String> = behavior
            .function_associations()
            .unwrap()
            .items()
            .iter()
            .map(|f| format!("{} {}", f.event_type().as_str(), f.function_arn().rsplit('/').next().unwrap()))
            .collect();
        events.sort();
        let function = resources["function_name"].as_str().unwrap();
        assert_eq!(events, [format!("viewer-request {function}"), format!("viewer-response {function}")]);
        let errors = config.custom_error_responses().unwrap().items();
        for code in [403, 404] {
            let error = errors.iter().find(|e| e.error_code() == code).unwrap();
            assert_eq!(error.response_page_path(), Some("/_skiff/404.html"));
            assert_eq!(error.response_code(), Some("404"));
        }
        let tags = aws
            .cloudfront
            .list_tags_for_resource()
            .resource(aws.cloudfront.get_distribution().id(&id).send().await.unwrap().distribution().unwrap().arn())
            .send()
            .await
            .unwrap();
        assert!(tags.tags().unwrap().items().iter().any(|t| t.key() == "skiff:site"));

        // The OAC signs every request.
        let oac =
            aws.cloudfront.get_origin_access_control().id(resources["oac_id"].as_str().unwrap()).send().await.unwrap();
        let oac = oac.origin_access_control().unwrap().origin_access_control_config().unwrap();
        assert_eq!((oac.signing_protocol().as_str(), oac.signing_behavior().as_str()), ("sigv4", "always"));

        // The router: published, with the preview domain filled in and the KVS associated.
        let live = aws
            .cloudfront
            .get_function()
            .name(function)
            .stage(aws_sdk_cloudfront::types::FunctionStage::Live)
            .send()
            .await
            .expect("the function is published");
        let code = String::from_utf8(live.function_code().unwrap().as_ref().to_vec()).unwrap();
        assert!(code.contains(&format!("const PREVIEWS = 'preview.{}';", site.domain)));
        let described = aws.cloudfront.describe_function().name(function).send().await.unwrap();
        let config = described.function_summary().unwrap().function_config().unwrap();
        assert_eq!(config.runtime().as_str(), "cloudfront-js-2.0");
        assert_eq!(
            config.key_value_store_associations().unwrap().items()[0].key_value_store_arn(),
            resources["kvs_arn"].as_str().unwrap()
        );

        // The bucket policy names this distribution only, for reads and lists.
        let arn =
            aws.cloudfront.get_distribution().id(&id).send().await.unwrap().distribution().unwrap().arn().to_string();
        let policy = aws.s3.get_bucket_policy().bucket(&site.bucket).send().await.unwrap();
        let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        let mut actions: Vec<&str> = statements.iter().map(|s| s["Action"].as_str().unwrap()).collect();
        actions.sort_unstable();
        assert_eq!(actions, ["s3:GetObject", "s3:ListBucket"]);
        for statement in statements {
            assert_eq!(statement["Principal"]["Service"], "cloudfront.amazonaws.com");
            assert_eq!(statement["Condition"]["StringEquals"]["AWS:SourceArn"], arn.as_str());
        }
    });

    // The redirects are KVS entries the router reads.
    let kvs = kvs_contents();
    assert_eq!(kvs[resources["kvs_arn"].as_str().unwrap()]["redirect:/old/"], "301 /new/");

    // A second run finds everything and changes nothing: the state, the distribution's
    // version and the function's version stay as they were.
    let etag_before = runtime()
        .block_on(aws.cloudfront.get_distribution_config().id(&id).send())
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let again = site.skiff(&["provision", "--json"]).success();
    assert_eq!(steps(&again), Vec::<String>::new(), "{}", again.stderr);
    assert!(again.stderr.contains("nothing to change"), "{}", again.stderr);
    assert_eq!(site.state(), state);
    let etag_after = runtime()
        .block_on(aws.cloudfront.get_distribution_config().id(&id).send())
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    assert_eq!(etag_before, etag_after);

    // `skiff status` reports what is live.
    let status = site.skiff(&["status", "--json"]).success().json();
    assert_eq!(status["domain"], site.domain.as_str());
    assert_eq!(status["distribution"]["id"], id.as_str());
    assert_eq!(status["certificate"]["status"], "ISSUED");
    assert!(status["certificate"]["days_left"].as_i64().unwrap() > 30);
    for host in site.hosts() {
        assert_eq!(status["dns"][&host]["ok"], true, "{host}: {status}");
    }
    assert_eq!(status["previews"], 0);
    assert!(status["live"].as_object().unwrap().is_empty());
    let text = site.skiff(&["status"]).success();
    assert!(text.stdout.contains(&format!("site          {} (bucket {}", site.domain, site.bucket)), "{}", text.stdout);
    assert!(text.stdout.contains("dns           "), "the report is on stdout: {}", text.stdout);
    assert!(text.stdout.trim_end().ends_with(&format!("url           https://{}", site.domain)), "{}", text.stdout);
    assert!(text.stderr.contains("nothing is published to production yet"), "{}", text.stderr);
}

#[test]
fn drift_in_owned_settings_is_shown_then_restored() {
    let site = Site::new("drift");
    site.skiff(&["provision"]).success();
    let aws = aws();
    let id = site.distribution_id();
    // Someone narrows the aliases, weakens TLS and opens the public access block.
    runtime().block_on(async {
        let got = aws.cloudfront.get_distribution_config().id(&id).send().await.unwrap();
        let mut config = got.distribution_config().unwrap().clone();
        config.aliases =
            Some(aws_sdk_cloudfront::types::Aliases::builder().quantity(1).items(&site.domain).build().unwrap());
        config.viewer_certificate.as_mut().unwrap().minimum_protocol_version = Some(MinimumProtocolVersion::TlSv12016);
        aws.cloudfront
            .update_distribution()
            .id(&id)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send()
            .await
            .unwrap();
        let open = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
            .block_public_acls(false)
            .ignore_public_acls(false)
            .block_public_policy(false)
            .restrict_public_buckets(false)
            .build();
        aws.s3
            .put_public_access_block()
            .bucket(&site.bucket)
            .public_access_block_configuration(open)
            .send()
            .await
            .unwrap();
    });

    let proxy = Proxy::start(&endpoint());
    let dry = site.skiff_at(&proxy.endpoint, &["provision", "--dry-run", "--json"]).success();
    assert_eq!(steps(&dry), ["secure-bucket", "update-distribution"]);
    let doc = dry.json();
    let changes: Vec<(String, String)> = doc["steps"][1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["setting"].as_str().unwrap().to_string(), c["current"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        changes,
        [("aliases".to_string(), site.domain.clone()), ("tls".to_string(), "sni-only TLSv1_2016".to_string())]
    );
    assert_eq!(doc["steps"][0]["changes"][0]["setting"], "block public access");
    assert!(dry.stderr.contains("aliases:"), "the plan shows the difference: {}", dry.stderr);
    assert!(proxy.writes().is_empty(), "a dry run writes nothing: {:?}", proxy.writes());

    let fixed = site.skiff(&["provision", "--json"]).success();
    assert_eq!(steps(&fixed), ["secure-bucket", "update-distribution"]);
    runtime().block_on(async {
        let got = aws.cloudfront.get_distribution_config().id(&id).send().await.unwrap();
        let config = got.distribution_config().unwrap();
        assert_eq!(config.aliases().unwrap().quantity(), 3);
        assert_eq!(
            config.viewer_certificate().unwrap().minimum_protocol_version(),
            Some(&MinimumProtocolVersion::TlSv122021)
        );
        let block = aws.s3.get_public_access_block().bucket(&site.bucket).send().await.unwrap();
        assert_eq!(block.public_access_block_configuration().unwrap().block_public_policy(), Some(true));
    });
    assert_eq!(steps(&site.skiff(&["provision", "--json"]).success()), Vec::<String>::new());
}

#[test]
fn a_certificate_whose_key_cloudfront_refuses_is_never_reused() {
    let site = Site::new("p384");
    let work = tempfile::tempdir().unwrap();
    let (key, certificate) = (work.path().join("key.pem"), work.path().join("cert.pem"));
    let names: Vec<String> = site.hosts().iter().map(|h| format!("DNS:{h}")).collect();
    // An issued certificate for every name, with an EC P-384 key (ACM issues those too).
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes", "-days", "30"])
        .args(["-subj", &format!("/CN={}", site.domain), "-addext", &format!("subjectAltName={}", names.join(","))])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let imported = runtime()
        .block_on(
            aws()
                .acm
                .import_certificate()
                .certificate(aws_sdk_acm::primitives::Blob::new(std::fs::read(&certificate).unwrap()))
                .private_key(aws_sdk_acm::primitives::Blob::new(std::fs::read(&key).unwrap()))
                .send(),
        )
        .unwrap();
    let p384 = imported.certificate_arn().unwrap().to_string();
    let described = runtime().block_on(aws().acm.describe_certificate().certificate_arn(&p384).send()).unwrap();
    let detail = described.certificate().unwrap();
    assert_eq!(detail.key_algorithm().map(aws_sdk_acm::types::KeyAlgorithm::as_str), Some("EC_secp384r1"));
    assert_eq!(detail.status().map(aws_sdk_acm::types::CertificateStatus::as_str), Some("ISSUED"));

    let run = site.skiff(&["provision", "--json", "--certificate-timeout", "2m"]).success();
    assert!(steps(&run).iter().any(|s| s == "request-certificate"), "{:?}", steps(&run));
    assert_ne!(site.state()["resources"]["certificate_arn"], p384.as_str(), "CloudFront takes no P-384 key");
}

#[test]
fn an_issued_certificate_that_covers_every_name_is_reused() {
    let site = Site::new("reuse");
    let aws = aws();
    // Requested at moto itself: the double would hold it until its DNS records exist.
    let moto = aws_at(&crate::harness::moto_endpoint());
    let arn = runtime().block_on(async {
        let hosts = site.hosts();
        let requested = moto
            .acm
            .request_certificate()
            .domain_name(&site.domain)
            .set_subject_alternative_names(Some(hosts))
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send()
            .await
            .unwrap();
        let arn = requested.certificate_arn().unwrap().to_string();
        // moto issues on the first describe (MOTO_ACM_VALIDATION_WAIT=0).
        let described = aws.acm.describe_certificate().certificate_arn(&arn).send().await.unwrap();
        assert_eq!(described.certificate().unwrap().status().unwrap().as_str(), "ISSUED");
        arn
    });
    let run = site.skiff(&["provision", "--json"]).success();
    let steps = steps(&run);
    assert!(!steps.iter().any(|s| s.contains("certificate")), "{steps:?}");
    assert_eq!(site.state()["resources"]["certificate_arn"], arn.as_str());
    let id = site.distribution_id();
    let got = runtime().block_on(aws.cloudfront.get_distribution_config().id(&id).send()).unwrap();
    assert_eq!(
        got.distribution_config().unwrap().viewer_certificate().unwrap().acm_certificate_arn(),
        Some(arn.as_str())
    );
}

#[test]
fn a_missing_hosted_zone_is_an_error_that_says_what_to_create_and_nothing_is_written() {
    let site = Site::without_zone("nozone", "t-nozone.invalid");
    let proxy = Proxy::start(&endpoint());
    let run = site.skiff_at(&proxy.endpoint, &["provision"]).failure(
        1,
        &["no public Route 53 hosted zone for `t-nozone.invalid`", "create-hosted-zone --name t-nozone.invalid"],
    );
    assert!(run.stdout.is_empty());
    assert!(proxy.writes().is_empty(), "nothing written: {:?}", proxy.writes());
    let exists = runtime().block_on(aws().s3.head_bucket().bucket(&site.bucket).send());
    assert!(exists.is_err(), "the bucket was not created");
}

#[test]
fn a_dry_run_on_a_new_site_lists_every_step_and_writes_nothing() {
    let site = Site::new("dry");
    let proxy = Proxy::start(&endpoint());
    let run = site.skiff_at(&proxy.endpoint, &["provision", "--dry-run"]).success();
    assert!(run.stderr.contains("would take 13 steps"), "{}", run.stderr);
    assert!(run.stderr.contains("dry run: nothing was changed"), "{}", run.stderr);
    assert!(proxy.writes().is_empty(), "{:?}", proxy.writes());
    assert!(runtime().block_on(aws().s3.head_bucket().bucket(&site.bucket).send()).is_err());
}

#[test]
fn provision_needs_a_domain_and_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("skiff.toml"), "[site]\nbucket = \"some-bucket\"\n").unwrap();
    skiff_at(&endpoint(), &["provision"], Some(dir.path())).failure(2, &["no domain to provision", "[domain]"]);
    std::fs::write(dir.path().join("skiff.toml"), "[domain]\nname = \"example.com\"\n").unwrap();
    skiff_at(&endpoint(), &["provision"], Some(dir.path())).failure(2, &["no bucket to provision", "--bucket"]);
    skiff_at(&endpoint(), &["status", "--bucket", "no-such-skiff-site"], Some(Path::new("/")))
        .failure(1, &["no-such-skiff-site"]);
}

fn cloudfront_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>test</RequestId></ErrorResponse>"
    )
}

#[test]
fn a_denied_action_is_named_and_the_next_run_resumes_where_it_stopped() {
    let site = Site::new("denied");
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next(
        "POST",
        "/2020-05-31/origin-access-control",
        1,
        403,
        &cloudfront_error("AccessDenied", "User is not authorized to perform cloudfront:CreateOriginAccessControl"),
    );
    site.skiff_at(&proxy.endpoint, &["provision"]).failure(
        1,
        &[
            "access denied: cloudfront:CreateOriginAccessControl on origin access control `skiff-",
            "allow `cloudfront:CreateOriginAccessControl`",
            "9 of 13 steps done; re-run `skiff provision` to finish",
        ],
    );
    let state = site.state();
    assert!(state["resources"]["kvs_arn"].is_string());
    assert!(state["resources"]["certificate_arn"].is_string());
    assert!(state["resources"].get("oac_id").is_none());
    let again = site.skiff(&["provision", "--json"]).success();
    assert_eq!(
        steps(&again),
        ["create-origin-access-control", "create-distribution", "put-bucket-policy", "upsert-dns-records"]
    );
}

#[test]
fn a_name_held_by_another_distribution_is_named() {
    let site = Site::new("cname");
    // Another distribution already serves www.<domain> (the emulator does not check; AWS does).
    let holder = crate::harness::Distribution::new(&site.bucket, "", true);
    runtime().block_on(async {
        let got = holder.client.get_distribution_config().id(&holder.id).send().await.unwrap();
        let mut config = got.distribution_config().unwrap().clone();
        config.aliases = Some(
            aws_sdk_cloudfront::types::Aliases::builder()
                .quantity(1)
                .items(format!("www.{}", site.domain))
                .build()
                .unwrap(),
        );
        holder
            .client
            .update_distribution()
            .id(&holder.id)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send()
            .await
            .unwrap();
    });
    let proxy = Proxy::start(&endpoint());
    proxy.fail_next(
        "POST",
        "/2020-05-31/distribution",
        1,
        409,
        &cloudfront_error(
            "CNAMEAlreadyExists",
            "One or more of the CNAMEs you provided are already associated with a different resource.",
        ),
    );
    site.skiff_at(&proxy.endpoint, &["provision"]).failure(
        1,
        &[
            &format!("`www.{}` is already an alternate domain name of distribution {}", site.domain, holder.id),
            "remove it from that distribution",
        ],
    );
}

#[test]
fn ctrl_c_stops_after_the_current_step_and_the_next_run_resumes() {
    let site = Site::new("ctrl-c");
    let proxy = Proxy::start_with_delay(&endpoint(), std::time::Duration::from_millis(100));
    let mut command = crate::harness::command_at(&proxy.endpoint, &["provision"]);
    let child = crate::harness::spawn(command.current_dir(site.dir.path()).env("SKIFF_POLL_INTERVAL_MS", "100"));
    crate::harness::wait_until("provision never reached the key value store", || {
        proxy.writes().iter().any(|r| r.target.contains("key-value-store"))
    });
    let run = crate::harness::interrupt(child);
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    let state = site.state();
    assert!(state["resources"]["certificate_arn"].is_string(), "{state}");
    assert!(state["resources"].get("distribution_id").is_none(), "stopped before the distribution: {state}");

    let again = site.skiff(&["provision", "--json"]).success();
    let resumed = steps(&again);
    assert!(!resumed.iter().any(|s| s == "create-bucket" || s == "request-certificate"), "{resumed:?}");
    assert!(resumed.iter().any(|s| s == "create-distribution"), "{resumed:?}");
    assert_eq!(steps(&site.skiff(&["provision", "--json"]).success()), Vec::<String>::new());
}
