# audioclass container image: build on Debian 12, ship only the binary, the runtime
# libraries and the bundled models. Settings come from AUDIOCLASS_* variables (see
# `audioclass serve --help`). tests/deploy/test_dockerfile_chroot.sh replays the FROM, RUN,
# COPY, ENV, WORKDIR, USER, ENTRYPOINT/CMD and HEALTHCHECK lines below in a debootstrapped
# Debian 12 root, so keep them to that subset and one instruction per logical line.

FROM debian:bookworm-slim AS build
# criterion is for the tests (off here) and OpenBLAS is dlopened at run time (engine/blas.h),
# so neither -dev package is needed to build; libvorbis/libogg are linked directly.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libsndfile1-dev libsoxr-dev libvorbis-dev libogg-dev libavformat-dev libavcodec-dev libavutil-dev zlib1g-dev libwslay-dev nettle-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads, so edits to tests/docs/deploy do not invalidate this layer.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY engine/ engine/
COPY server/ server/
COPY bench/ bench/
# Portable code (no -march=native): the image may run on any x86-64; the engine still picks
# the best OpenBLAS kernel for the CPU it lands on.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DAC_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target audioclass

FROM debian:bookworm-slim AS runtime
# libopenblas0-pthread provides libopenblas.so.0, which the engine loads at run time.
# A fixed numeric uid lets Kubernetes' runAsNonRoot verify it without reading /etc/passwd.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libsndfile1 libsoxr0 libopenblas0-pthread libgomp1 libvorbis0a libogg0 libavformat59 libavcodec59 libavutil57 zlib1g libwslay1 libnettle8 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 audioclass \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin audioclass
COPY --from=build /src/build/audioclass /usr/local/bin/audioclass
COPY deploy/healthcheck.sh /usr/local/bin/audioclass-healthcheck
# Models and their cards (.dockerignore leaves out models/train); root-owned, read-only.
COPY models/ /opt/audioclass/models/
WORKDIR /opt/audioclass
# Nothing is written at run time: logs go to stderr, models are mmapped read-only, so the
# container runs with a read-only root file system.
ENV AUDIOCLASS_MODELS_DIR=/opt/audioclass/models AUDIOCLASS_PORT=8080 AUDIOCLASS_BIND=0.0.0.0
USER 10001:10001
EXPOSE 8080
# bash's /dev/tcp (no curl in the image); /healthz = the process answers HTTP.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/audioclass-healthcheck", "/healthz"]
# Exec form: audioclass is PID 1 and gets SIGTERM itself (it blocks the signal and waits
# for it, which PID 1 may do), drains its queue and exits 0. CMD is replaceable:
# `docker run IMAGE info m5-speech`.
ENTRYPOINT ["/usr/local/bin/audioclass"]
CMD ["serve"]
