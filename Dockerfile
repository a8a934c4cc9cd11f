# stsfix as a container image, for deploy/cronjob-diagnose.yaml, deploy/job-rollback.yaml and
# deploy/guard.yaml (`stsfix guard`: metrics, probes and opt-in auto-repair on port 8080).
#   docker build -t stsfix:0.1.0 .
#   kind load docker-image stsfix:0.1.0 --name stsfix-e2e     # for the kind cluster of docs/e2e.md
# Two stages: the first builds wheels (stsfix and its dependencies), the second installs them into a
# slim Python without build tools and runs as an unprivileged user (UID 10001, no shell, no home).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stsfix ./stsfix
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
LABEL org.opencontainers.image.title="stsfix" \
      org.opencontainers.image.description="Get stuck Kubernetes StatefulSet rollouts moving again, safely." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin stsfix
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
# In a pod, stsfix uses the in-cluster configuration (the ServiceAccount token); give -n explicitly.
# `stsfix guard --listen=:8080` serves /metrics, /healthz and /readyz there.
EXPOSE 8080
ENTRYPOINT ["stsfix"]
CMD ["--help"]
