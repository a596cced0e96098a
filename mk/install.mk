# make install / uninstall / deb: where splitxen goes on a host (FHS; Debian policy for the
# package, whose debian/rules runs `make install` with PREFIX=/usr and DESTDIR).
#
#   make install [PREFIX=/usr/local] [DESTDIR=...]   programs, fio engine, manual pages,
#                                                     systemd units, bash completion, examples
#   make uninstall [same PREFIX/DESTDIR]              removes exactly what install put there
#   make deb                                          build/splitxen_<version>_<arch>.deb
#
# Programs an operator runs as services (the backends, the device model, the sim core) go to
# sbin, the rest to bin. The fio engine is a plugin fio loads by path
# (--ioengine=external:$(SXLIBDIR)/splitxen-fio.so), so it lives in a private library folder.
# /etc/default/splitxen is installed only where none exists, and uninstalled only while it is
# the shipped one: an operator's edits survive both.

PREFIX         ?= /usr/local
DESTDIR        ?=
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
LIBDIR         ?= $(PREFIX)/lib
SXLIBDIR       ?= $(LIBDIR)/splitxen
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/splitxen
EXAMPLESDIR    ?= $(DOCDIR)/examples
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc

INSTALL_BIN   := splitxen splitxen-tapfront splitxen-hvmnet
INSTALL_SBIN  := splitxen-core splitxen-blkback splitxen-netback splitxen-dm
INSTALL_MAN   := $(wildcard man/man1/*.1 man/man7/*.7 man/man8/*.8)
INSTALL_UNITS := $(patsubst dist/systemd/%.in,%,$(wildcard dist/systemd/*.in))
INSTALL_EXAMPLES := examples/driver.cfg examples/pv-guest.cfg examples/hvm-guest.cfg \
                    dist/dm-guest.conf

# The units name the installed programs and /etc/default/splitxen.
UNIT_SUBST := -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
              -e 's|/etc/default/splitxen|$(SYSCONFDIR)/default/splitxen|g'
$(B)/dist/systemd/%: dist/systemd/%.in FORCE
	@mkdir -p $(dir $@)
	sed $(UNIT_SUBST) $< >$@.tmp && mv $@.tmp $@

.PHONY: install uninstall install-units deb check-deb FORCE
FORCE:

install-units: $(addprefix $(B)/dist/systemd/,$(INSTALL_UNITS))

install: $(addprefix $(B)/bin/,$(INSTALL_BIN) $(INSTALL_SBIN)) install-units
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SXLIBDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0755 $(addprefix $(B)/bin/,$(INSTALL_BIN)) $(DESTDIR)$(BINDIR)
	install -m 0755 $(addprefix $(B)/bin/,$(INSTALL_SBIN)) $(DESTDIR)$(SBINDIR)
	@if [ -e $(B)/lib/splitxen-fio.so ]; then \
	    echo "install -m 0644 $(B)/lib/splitxen-fio.so $(DESTDIR)$(SXLIBDIR)"; \
	    install -m 0644 $(B)/lib/splitxen-fio.so $(DESTDIR)$(SXLIBDIR); \
	else echo "note: $(B)/lib/splitxen-fio.so not built (fio source missing): not installed"; fi
	@if [ -e $(B)/lib/splitxen-netdev-dpdk.so ]; then \
	    echo "install -m 0644 $(B)/lib/splitxen-netdev-dpdk.so $(DESTDIR)$(SXLIBDIR)"; \
	    install -m 0644 $(B)/lib/splitxen-netdev-dpdk.so $(DESTDIR)$(SXLIBDIR); \
	else echo "note: $(B)/lib/splitxen-netdev-dpdk.so not built (no libdpdk-dev): not installed"; fi
	$(foreach s,1 7 8,install -m 0644 $(filter %.$(s),$(INSTALL_MAN)) $(DESTDIR)$(MANDIR)/man$(s);)
	install -m 0644 $(addprefix $(B)/dist/systemd/,$(INSTALL_UNITS)) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 dist/bash-completion/splitxen $(DESTDIR)$(BASHCOMPDIR)/splitxen
	install -m 0644 $(INSTALL_EXAMPLES) $(DESTDIR)$(EXAMPLESDIR)
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/splitxen ]; then \
	    cmp -s dist/default/splitxen $(DESTDIR)$(SYSCONFDIR)/default/splitxen || \
	    echo "note: $(DESTDIR)$(SYSCONFDIR)/default/splitxen exists with local changes: kept"; \
	else echo "install -m 0644 dist/default/splitxen $(DESTDIR)$(SYSCONFDIR)/default/splitxen"; \
	    install -m 0644 dist/default/splitxen $(DESTDIR)$(SYSCONFDIR)/default/splitxen; fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_BIN)) \
	    $(addprefix $(DESTDIR)$(SBINDIR)/,$(INSTALL_SBIN)) \
	    $(DESTDIR)$(SXLIBDIR)/splitxen-fio.so $(DESTDIR)$(SXLIBDIR)/splitxen-netdev-dpdk.so \
	    $(foreach m,$(INSTALL_MAN),$(DESTDIR)$(MANDIR)/$(notdir $(patsubst %/,%,$(dir $(m))))/$(notdir $(m))) \
	    $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(INSTALL_UNITS)) \
	    $(DESTDIR)$(BASHCOMPDIR)/splitxen \
	    $(addprefix $(DESTDIR)$(EXAMPLESDIR)/,$(notdir $(INSTALL_EXAMPLES))) \
	    $(DESTDIR)$(DOCDIR)/README.md
	@if cmp -s dist/default/splitxen $(DESTDIR)$(SYSCONFDIR)/default/splitxen; then \
	    echo "rm -f $(DESTDIR)$(SYSCONFDIR)/default/splitxen"; \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/default/splitxen; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/default/splitxen ]; then \
	    echo "note: $(DESTDIR)$(SYSCONFDIR)/default/splitxen has local changes: kept"; fi
	-rmdir $(DESTDIR)$(SXLIBDIR) $(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null

# The package, built from a copy of the tracked tree (plus uncommitted edits) in $(B)/deb, so
# that dpkg-buildpackage's own files stay out of the checkout. The copy builds into its own
# build/ and shares this checkout's .deps (the fio source the engine is built against).
DEB_ARCH := $(shell dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null || echo amd64)
DEB_FILE := $(B)/splitxen_$(SX_VERSION)_$(DEB_ARCH).deb
deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "make deb: dpkg-buildpackage missing (make deps)"; exit 1; }
	./mk/fio-src.sh >/dev/null
	rm -rf $(B)/deb && mkdir -p $(B)/deb/splitxen-$(SX_VERSION)
	git ls-files -z --cached --others --exclude-standard | \
	    tar --null -T - -cf - | tar -xf - -C $(B)/deb/splitxen-$(SX_VERSION)
	ln -s $(abspath .deps) $(B)/deb/splitxen-$(SX_VERSION)/.deps
	cd $(B)/deb/splitxen-$(SX_VERSION) && dpkg-buildpackage -b -us -uc
	cp $(B)/deb/splitxen_$(SX_VERSION)_$(DEB_ARCH).deb $(DEB_FILE)
	@echo "built $(DEB_FILE)"

# Install the package on this machine, check it, remove and purge it, and check that nothing is
# left (tests/dist/deb_install.itest; it changes the machine's packages, so only here).
check-deb: deb
	SX_TEST_DEB=1 tests/run-tests --build $(B) --only integration --filter tests/dist/deb_
