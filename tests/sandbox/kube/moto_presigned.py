"""Let moto's server answer presigned (query-string SigV4) requests, as STS does for EKS tokens.

Stock moto 5 routes an unsigned-header GET to S3 and reads the caller's access key only from
the Authorization header, so a presigned GetCallerIdentity URL would return S3's answer or
the default identity. These two wrappers make moto use X-Amz-Credential from the query
string when there is no Authorization header. Idempotent; harmless for other requests.
"""

import urllib.parse

_MARK = "_sandbox_presigned_patch"


def install():
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if not getattr(DomainDispatcherApplication.infer_service_region_host, _MARK, False):
        original_infer = DomainDispatcherApplication.infer_service_region_host

        def infer_service_region_host(self, environ, path):
            if not environ.get("HTTP_AUTHORIZATION"):
                credential = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
                if credential and len(credential[0].split("/")) == 5:
                    environ = dict(environ, HTTP_AUTHORIZATION=f"AWS4-HMAC-SHA256 Credential={credential[0]}, "
                                                               "SignedHeaders=host, Signature=presigned")
            return original_infer(self, environ, path)

        setattr(infer_service_region_host, _MARK, True)
        DomainDispatcherApplication.infer_service_region_host = infer_service_region_host

    if not getattr(BaseResponse.get_access_key, _MARK, False):
        original_access_key = BaseResponse.get_access_key

        def get_access_key(self):
            if "Authorization" not in self.headers:
                credential = (self.querystring or {}).get("X-Amz-Credential")
                if credential:
                    return credential[0].split("/")[0]
            return original_access_key(self)

        setattr(get_access_key, _MARK, True)
        BaseResponse.get_access_key = get_access_key
