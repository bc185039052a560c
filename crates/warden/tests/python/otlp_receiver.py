"""An OTLP/HTTP trace receiver for the tests: each export is decoded with the official
OpenTelemetry protobuf definitions (PyPI `opentelemetry-proto`) and every span is appended to
the file named on the command line as one JSON line. Prints the port it listens on
(127.0.0.1) and answers as a collector does: 200 and an empty ExportTraceServiceResponse."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = (
            self.path == "/v1/traces"
            and self.headers.get("Content-Type") == "application/x-protobuf"
        )
        if ok:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with open(OUT, "a", encoding="utf-8") as out:
                for rs in request.resource_spans:
                    resource = {a.key: value(a.value) for a in rs.resource.attributes}
                    for ss in rs.scope_spans:
                        for span in ss.spans:
                            out.write(
                                json.dumps(
                                    {
                                        "name": span.name,
                                        "kind": span.kind,
                                        "trace_id": span.trace_id.hex(),
                                        "attributes": {
                                            a.key: value(a.value) for a in span.attributes
                                        },
                                        "status": span.status.code,
                                        "resource": resource,
                                    }
                                )
                                + "\n"
                            )
        data = ExportTraceServiceResponse().SerializeToString() if ok else b""
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
