# libFuzzer targets for what xpmemctl and xpmemd read from outside (clang, not part
# of `make user`).
#
#   $(BUILD)/fuzz/libfuzzer/fuzz-query   XPMEM_CMD_QUERY replies: checks, decoding, JSON and tables
#   $(BUILD)/fuzz/libfuzzer/fuzz-args    the command line and the value parsers
#   $(BUILD)/fuzz/libfuzzer/fuzz-wire    xpmemd's datagrams: parsing, MAC, epochs, replay, bodies
#   $(BUILD)/fuzz/libfuzzer/seeds/NAME   seed corpora, written by seeds.c
#   $(BUILD)/fuzz/libfuzzer/corpus/NAME  what the runs found, kept between runs
#
#   make libfuzz          each target for FUZZ_SECONDS (default 600), on the host
#   make libfuzz-build    only build them (make check runs each for 20 s)
#
# A crash leaves its input in $(BUILD)/fuzz/libfuzzer/NAME-crash-*; replay it with
# $(BUILD)/fuzz/libfuzzer/fuzz-NAME FILE.

LIBFUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
LIBFUZZ_OUT := $(BUILD)/fuzz/libfuzzer
LIBFUZZ_TARGETS := query args wire
# Sanitizer reports must end the run: UBSan would only print and go on.
LIBFUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -Itools/xpmemctl
LIBFUZZ_PARSE := tools/xpmemctl/xpmemctl_parse.c tools/xpmemctl/xpmemctl_parse.h include/xpmem_ioctl.h

$(LIBFUZZ_OUT)/fuzz-query: tests/fuzz/libfuzzer/fuzz_query.c tools/xpmemctl/xpmemctl_render.c \
		tools/xpmemctl/xpmemctl_render.h $(LIBFUZZ_PARSE)
	@mkdir -p $(@D)
	$(LIBFUZZ_CC) $(LIBFUZZ_CFLAGS) $(shell pkg-config --cflags $(XPMEMCTL_PKGS) 2>/dev/null) \
		-o $@ $(filter %.c,$^) $(XPMEMCTL_LIBS)

$(LIBFUZZ_OUT)/fuzz-args: tests/fuzz/libfuzzer/fuzz_args.c $(LIBFUZZ_PARSE)
	@mkdir -p $(@D)
	$(LIBFUZZ_CC) $(LIBFUZZ_CFLAGS) -o $@ $(filter %.c,$^) -lm

$(LIBFUZZ_OUT)/fuzz-wire: tests/fuzz/libfuzzer/fuzz_wire.c tools/xpmemd/wire.c tools/xpmemd/wire.h \
		include/xpmem_fabric.h
	@mkdir -p $(@D)
	$(LIBFUZZ_CC) $(LIBFUZZ_CFLAGS) -o $@ $(filter %.c,$^) \
		$(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

$(LIBFUZZ_OUT)/make-seeds: tests/fuzz/libfuzzer/seeds.c include/xpmem_ioctl.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_USER) -o $@ $<

# Written afresh when the generator changes: stale seeds would not decode any more.
$(LIBFUZZ_OUT)/seeds/.done: $(LIBFUZZ_OUT)/make-seeds
	rm -rf $(@D)
	mkdir -p $(@D)/query $(@D)/args $(@D)/wire
	$< $(@D)/query $(@D)/args
	touch $@

.PHONY: libfuzz libfuzz-build
libfuzz-build: $(patsubst %,$(LIBFUZZ_OUT)/fuzz-%,$(LIBFUZZ_TARGETS)) $(LIBFUZZ_OUT)/seeds/.done

libfuzz: libfuzz-build
	tests/fuzz/libfuzzer/run.sh "$(BUILD)" $(FUZZ_SECONDS) $(LIBFUZZ_TARGETS)
