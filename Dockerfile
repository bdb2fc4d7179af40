# warroom: one replica of the Slack app. Build: docker build -t warroom .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY templates ./templates
RUN pip install '.[postgres]' \
    && useradd --create-home --uid 10001 warroom \
    && mkdir -p /data && chown warroom /data

USER warroom
WORKDIR /data
# Listen on every interface inside the container; publish the port to choose who reaches it.
ENV WARROOM_HOST=0.0.0.0 \
    WARROOM_PORT=3000 \
    DATABASE_URL=sqlite:////data/warroom.db
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["warroom"]
CMD ["serve"]
