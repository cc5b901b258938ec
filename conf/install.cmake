# conf/install.cmake, included from the top CMakeLists.txt: the chat page
# and the example configuration of an install.
#
# `cmake --install` puts the page in share/gatehouse/www and an example
# etc/gatehouse/gateway.yaml made from conf/gateway.yaml, with plugins_dir and
# the static root pointing at the installed folders. The paths are filled in
# when installing, for the prefix installed into (so `--prefix DIR` other
# than the configured one works); DESTDIR is a staging root and is not part
# of the paths written, as packagers expect. An existing
# etc/gatehouse/gateway.yaml is the operator's: install leaves it alone.
install(FILES ${PROJECT_SOURCE_DIR}/www/index.html ${PROJECT_SOURCE_DIR}/www/chat.js
              ${PROJECT_SOURCE_DIR}/www/chat.css
        DESTINATION ${CMAKE_INSTALL_DATADIR}/gatehouse/www)

# The template: conf/gateway.yaml without its opening comment, with
# %GH_PLUGINS% and %GH_WWW% where the two paths go (not @VAR@: CMake
# would expand that in the install script itself).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/gateway.yaml)
file(READ ${CMAKE_CURRENT_LIST_DIR}/gateway.yaml GH_ETC_YAML)
string(REGEX REPLACE "^(#[^\n]*\n)+" "" GH_ETC_YAML "${GH_ETC_YAML}")
string(REGEX REPLACE "(^|\n)plugins_dir: [^\n]*" "\\1plugins_dir: '%GH_PLUGINS%'"
       GH_ETC_YAML "${GH_ETC_YAML}")
string(REGEX REPLACE "root: \\.\\./www" "root: '%GH_WWW%'" GH_ETC_YAML "${GH_ETC_YAML}")
string(FIND "${GH_ETC_YAML}" "%GH_PLUGINS%" GH_ETC_HIT1)
string(FIND "${GH_ETC_YAML}" "%GH_WWW%" GH_ETC_HIT2)
if(GH_ETC_HIT1 EQUAL -1 OR GH_ETC_HIT2 EQUAL -1)
    message(FATAL_ERROR "conf/gateway.yaml has no 'plugins_dir:' line or no 'root: ../www': "
                        "update conf/install.cmake")
endif()
file(WRITE ${PROJECT_BINARY_DIR}/etc/gateway.yaml.in.new
"# gatehouse: the example configuration of an install, generated from
# conf/gateway.yaml. `gatehouse` run without -c outside a source tree reads
# this file; check it with `gatehouse -t`. Paths are absolute (the install's).
${GH_ETC_YAML}")
configure_file(${PROJECT_BINARY_DIR}/etc/gateway.yaml.in.new
               ${PROJECT_BINARY_DIR}/etc/gateway.yaml.in COPYONLY)

# At install time: relative folders are under the prefix installed into.
install(CODE "
    function(gh_under var dir)
        if(IS_ABSOLUTE \"\${dir}\")
            set(\${var} \"\${dir}\" PARENT_SCOPE)
        else()
            set(\${var} \"\${CMAKE_INSTALL_PREFIX}/\${dir}\" PARENT_SCOPE)
        endif()
    endfunction()
    gh_under(gh_etc \"${CMAKE_INSTALL_SYSCONFDIR}/gatehouse\")
    gh_under(gh_lib \"${CMAKE_INSTALL_LIBDIR}/gatehouse/plugins\")
    gh_under(gh_www \"${CMAKE_INSTALL_DATADIR}/gatehouse/www\")
    # YAML single quotes: a prefix may hold spaces, '#' or ': '
    string(REPLACE \"'\" \"''\" GH_PLUGINS \"\${gh_lib}\")
    string(REPLACE \"'\" \"''\" GH_WWW \"\${gh_www}\")
    # (file(INSTALL) adds DESTDIR itself; the check for an existing file must too)
    if(EXISTS \"\$ENV{DESTDIR}\${gh_etc}/gateway.yaml\")
        message(STATUS \"Keeping: \$ENV{DESTDIR}\${gh_etc}/gateway.yaml\")
    else()
        file(READ \"${PROJECT_BINARY_DIR}/etc/gateway.yaml.in\" gh_yaml)
        string(REPLACE \"%GH_PLUGINS%\" \"\${GH_PLUGINS}\" gh_yaml \"\${gh_yaml}\")
        string(REPLACE \"%GH_WWW%\" \"\${GH_WWW}\" gh_yaml \"\${gh_yaml}\")
        file(WRITE \"${PROJECT_BINARY_DIR}/etc/install/gateway.yaml\" \"\${gh_yaml}\")
        file(INSTALL \"${PROJECT_BINARY_DIR}/etc/install/gateway.yaml\" DESTINATION \"\${gh_etc}\")
    endif()")
