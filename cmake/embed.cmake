# embed.cmake - writes a file's bytes as a C array, and its SHA-256 as a string (for ETags):
# cmake -DIN=file -DOUT=x.c -DNAME=sym -P embed.cmake
file(READ "${IN}" hex HEX)
file(SHA256 "${IN}" sha)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake; do not edit */\n"
     "const unsigned char ${NAME}[] = {\n${body}0};\n"
     "const unsigned long ${NAME}_len = ${n};\n"
     "const char ${NAME}_sha256[] = \"${sha}\";\n")
