// Rung 6 on AWS: CloudFront in front of the balancer, with the behaviours of the local edge
// (src/launcher/varnish-vcl.ts). Hashed assets (/static/*) are cached with the managed
// CachingOptimized policy (no cookies, no query, compressed); the API and the dashboard are
// never cached (CachingDisabled, every viewer header but Host forwarded); every other path
// (the public pages, redirects) follows the origin's Cache-Control, with the session cookie
// in the cache key and a default TTL of 0: an anonymous page marked `public, s-maxage` is
// shared, anything personal (`private, no-store`) or unmarked is not. Redirects stay
// uncached (`private, no-store`), so clicks are counted at the origin.
//
// Purging: CloudFront invalidations take seconds to minutes, not the local edge's
// milliseconds, so here a public page's s-maxage (EDGE_PAGE_TTL_S, 30 s) bounds how stale a
// preview can be after an edit (docs/deploy.md).
import { Duration, RemovalPolicy, Validations, aws_cloudfront as cloudfront, aws_cloudfront_origins as origins, aws_elasticloadbalancingv2 as elbv2, aws_s3 as s3 } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { SESSION_COOKIE } from '../../kit/session/request-session.ts';

export interface CdnProps {
  loadBalancer: elbv2.IApplicationLoadBalancer;
  /** HTTPS from CloudFront to the balancer (when the balancer has a certificate). */
  httpsOrigin: boolean;
  /** Origin Shield in this region (one more cache layer in front of the origin), when given. */
  originShieldRegion?: string | undefined;
}

export class Cdn extends Construct {
  readonly distribution: cloudfront.Distribution;

  constructor(scope: Construct, id: string, props: CdnProps) {
    super(scope, id);
    const origin = new origins.LoadBalancerV2Origin(props.loadBalancer, {
      protocolPolicy: props.httpsOrigin ? cloudfront.OriginProtocolPolicy.HTTPS_ONLY : cloudfront.OriginProtocolPolicy.HTTP_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      ...(props.originShieldRegion ? { originShieldRegion: props.originShieldRegion, originShieldEnabled: true } : {}),
    });
    // Public pages: the origin decides (s-maxage for anonymous views); the session cookie is
    // in the key so that a logged-in request never shares an entry with an anonymous one.
    const pages = new cloudfront.CachePolicy(this, 'Pages', {
      comment: 'Ladder public pages: the origin Cache-Control decides; nothing is cached without it',
      defaultTtl: Duration.seconds(0),
      minTtl: Duration.seconds(0),
      maxTtl: Duration.days(1),
      cookieBehavior: cloudfront.CacheCookieBehavior.allowList(SESSION_COOKIE),
      headerBehavior: cloudfront.CacheHeaderBehavior.none(),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.all(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    const uncached: cloudfront.BehaviorOptions = {
      origin,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
    };
    const logs = new s3.Bucket(this, 'Logs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // CloudFront's standard logs are written with an ACL.
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      removalPolicy: RemovalPolicy.DESTROY,
      lifecycleRules: [{ expiration: Duration.days(30) }],
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason: 'This bucket only receives the CloudFront access logs; logging access to the log bucket itself would recurse.',
    });
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Ladder rung 6: the CDN edge',
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      enableLogging: true,
      logBucket: logs,
      defaultBehavior: {
        origin,
        cachePolicy: pages,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        compress: true,
      },
      additionalBehaviors: {
        '/static/*': {
          origin,
          cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          compress: true,
        },
        '/api/*': uncached,
        '/dashboard*': uncached,
      },
    });
    Validations.of(this.distribution).acknowledge(
      {
        id: 'AwsSolutions::AwsSolutions-CFR1',
        reason: 'Links is a public service for every country: no geo restriction is wanted.',
      },
      {
        id: 'AwsSolutions::AwsSolutions-CFR2',
        reason: 'Rate limits and input checks are in the app (kit/security); a WAF web ACL is an account-level choice left to the deployer.',
      },
      {
        id: 'AwsSolutions::AwsSolutions-CFR4',
        reason: 'Without a custom domain the distribution uses the default *.cloudfront.net certificate, whose TLS policy cannot be set; TLS 1.2 is the minimum once a domain certificate is attached.',
      },
      {
        id: 'AwsSolutions::AwsSolutions-CFR5',
        reason: 'Without a balancer certificate CloudFront reaches the balancer over HTTP inside AWS; with --certificate-arn the origin is HTTPS with TLS 1.2.',
      },
    );
  }
}
