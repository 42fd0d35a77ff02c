# notice-hub: the `hub` command on Python 3.11, run as a non-root user.
#   docker build -t notice-hub .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -v hub-data:/data notice-hub            # all roles
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -v hub-data:/data notice-hub run --role router
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# A CJK font: this image ships the dashboard, whose Korean labels are empty boxes where it is rendered without one
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir uv

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra postgres --no-install-project

# Then the project itself (hatchling needs README.md, named in pyproject.toml).
COPY README.md ./
COPY hub ./hub
RUN uv sync --frozen --no-dev --extra postgres

RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /home/hub --create-home --shell /usr/sbin/nologin hub \
    && mkdir -p /data/outbox \
    && chown -R hub:hub /data

ENV PATH="/app/.venv/bin:${PATH}" \
    HUB_DATABASE_URL=sqlite+aiosqlite:////data/hub.db \
    HUB_OUTBOX_DIR=/data/outbox

VOLUME ["/data"]
USER hub

# `hub` is PID 1 and handles SIGTERM itself: in-flight batches finish and commit within 30 s.
ENTRYPOINT ["hub"]
CMD ["run"]
