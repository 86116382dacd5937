// The routes every instance answers whatever its application: what HAProxy's health checks and
// a metrics scraper rely on.
#include "runtime/server.hpp"

namespace tandem {

double Server::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

MetricsGauges Server::gauges() const {
  MetricsGauges gauges;
  gauges.connections_open = connections_.size();
  gauges.draining = draining_;
  gauges.uptime_seconds = uptime_seconds();
  gauges.worker = worker_.stats();
  return gauges;
}

void Server::add_status_routes() {
  // 200 while serving, 503 from the moment the drain starts: how HAProxy learns to stop sending.
  router_.add("GET", "/health", [this](const Request&, Responder respond) {
    Json::Value body(Json::objectValue);
    body["status"] = draining_ ? "draining" : "healthy";
    body["container"] = config_.instance_id;
    body["version"] = app_.version();
    body["uptime"] = uptime_seconds();
    body["connections"] = Json::UInt64(connections_.size());
    CpuWorkerStats worker = worker_.stats();
    Json::Value cpu(Json::objectValue);
    cpu["inFlight"] = Json::UInt64(worker.in_flight);
    cpu["capacity"] = Json::UInt64(worker.capacity);
    body["worker"] = cpu;
    app_.describe_health(body);
    respond(Response::json(draining_ ? 503 : 200, body));
  });
  router_.add("GET", "/api/metrics", [this](const Request&, Responder respond) {
    respond(Response::json(200, metrics_.render_json(gauges())));
  });
  router_.add("GET", "/metrics", [this](const Request&, Responder respond) {
    Response response;
    response.body = metrics_.render_prometheus(gauges());
    // Prometheus's own exposition format, the one route that is not JSON.
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    respond(std::move(response));
  });
}

}  // namespace tandem
