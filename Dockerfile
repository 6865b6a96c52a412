# Touchpoint image: one image, two roles.
#   docker run touchpoint              -> `touchpoint worker`   (Faust worker, web 6066, /metrics 9464)
#   docker run touchpoint collector    -> `touchpoint collector` (HTTP collector and API, 8080)
# Configuration comes only from TOUCHPOINT_* environment variables (`touchpoint settings`).

# ---- build: a wheel of the package and of every dependency ---------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
RUN pip wheel --wheel-dir /wheels .

# ---- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Container defaults; everything else keeps the defaults of streams/settings.py.
    TOUCHPOINT_DATA_DIR=/var/lib/touchpoint \
    TOUCHPOINT_COLLECTOR_HOST=0.0.0.0

RUN groupadd --system --gid 10001 touchpoint \
 && useradd --system --uid 10001 --gid touchpoint --home-dir /app --shell /usr/sbin/nologin touchpoint \
 && mkdir -p /app /var/lib/touchpoint \
 && chown touchpoint:touchpoint /app /var/lib/touchpoint

COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels /wheels/*.whl && rm -rf /wheels

WORKDIR /app
USER 10001:10001
# RocksDB table data of the worker (mount a persistent volume here).
VOLUME ["/var/lib/touchpoint"]
# worker web (health, readiness, experience API) | worker /metrics | collector
EXPOSE 6066 9464 8080

# Healthy when this container's role answers /healthz: the worker's web port, else the
# collector's. Stdlib only (the slim image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u\nports = (os.environ.get('TOUCHPOINT_WORKER_WEB_PORT', '6066'), os.environ.get('TOUCHPOINT_COLLECTOR_PORT', '8080'))\nfor port in ports:\n    try:\n        if u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3).status == 200:\n            sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)\n"]

ENTRYPOINT ["touchpoint"]
CMD ["worker"]
